fn main() {
    println!("{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
}
