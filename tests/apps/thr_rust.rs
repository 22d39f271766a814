//! Rust's std threads: spawn/join, mpsc channels (fan-in, sync_channel rendezvous), a scoped
//! parallel sum over `available_parallelism` workers (rayon-style chunks), Mutex, Condvar,
//! RwLock, Barrier, OnceLock, thread_local! with a destructor, park/unpark, and a panic caught
//! at join. Output is deterministic (no ids, no timing) so it compares with the native run.
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, RwLock};
use std::thread;

fn spawn_join() {
    let handles: Vec<_> = (0..8u64).map(|i| thread::spawn(move || i * i)).collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("spawn/join: 8 threads, sum of squares {sum}");
    let named = thread::Builder::new()
        .name("worker-7".into())
        .stack_size(256 * 1024)
        .spawn(|| thread::current().name().map(str::to_owned))
        .unwrap();
    println!("named thread: {:?}", named.join().unwrap());
}

fn channels() {
    let (tx, rx) = mpsc::channel();
    for p in 0..4u64 {
        let tx = tx.clone();
        thread::spawn(move || {
            for i in 0..1000u64 {
                tx.send(p * 1000 + i).unwrap();
            }
        });
    }
    drop(tx);
    let (count, sum) = rx.iter().fold((0u64, 0u64), |(c, s), v| (c + 1, s + v));
    println!("channel: {count} messages, sum {sum}");

    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let echo = thread::spawn(move || rx.iter().map(u64::from).sum::<u64>());
    for i in 0..500 {
        tx.send(i).unwrap();
    }
    drop(tx);
    println!("rendezvous channel: sum {}", echo.join().unwrap());
}

fn parallel_sum() {
    let n = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let data: Vec<u64> = (1..=2_000_000u64).collect();
    let chunk = data.len().div_ceil(n);
    let total: u64 = thread::scope(|s| {
        let parts: Vec<_> = data
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(|x| x * x % 1_000_003).sum::<u64>()))
            .collect();
        parts.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let serial: u64 = data.iter().map(|x| x * x % 1_000_003).sum();
    println!(
        "scoped parallel sum: equals the serial sum: {}, {total}",
        total == serial
    );
    // Scoped threads borrow mutably, one slice each.
    let mut v = vec![0u32; 1024];
    thread::scope(|s| {
        for (i, part) in v.chunks_mut(128).enumerate() {
            s.spawn(move || part.iter_mut().for_each(|x| *x = i as u32));
        }
    });
    println!("scoped chunks_mut: sum {}", v.iter().sum::<u32>());
}

fn locks() {
    let counter = Arc::new(Mutex::new(0u64));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let c = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..10_000 {
                    *c.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    println!("mutex: {}", *counter.lock().unwrap());

    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let p = Arc::clone(&pair);
            thread::spawn(move || {
                let (m, cv) = &*p;
                let g = cv.wait_while(m.lock().unwrap(), |v| *v == 0).unwrap();
                *g
            })
        })
        .collect();
    {
        let (m, cv) = &*pair;
        *m.lock().unwrap() = 42;
        cv.notify_all();
    }
    let seen: Vec<u32> = waiters.into_iter().map(|h| h.join().unwrap()).collect();
    println!("condvar: waiters saw {seen:?}");

    let table = Arc::new(RwLock::new(vec![0u64; 8]));
    let ws: Vec<_> = (0..2)
        .map(|_| {
            let t = Arc::clone(&table);
            thread::spawn(move || {
                for _ in 0..2000 {
                    t.write().unwrap().iter_mut().for_each(|x| *x += 1);
                }
            })
        })
        .collect();
    let rs: Vec<_> = (0..4)
        .map(|_| {
            let t = Arc::clone(&table);
            thread::spawn(move || {
                (0..2000)
                    .filter(|_| {
                        let g = t.read().unwrap();
                        g.iter().any(|x| *x != g[0])
                    })
                    .count()
            })
        })
        .collect();
    ws.into_iter().for_each(|h| h.join().unwrap());
    let torn: usize = rs.into_iter().map(|h| h.join().unwrap()).sum();
    println!(
        "rwlock: {:?}, torn reads {torn}",
        table.read().unwrap()[..2].to_vec()
    );

    let barrier = Arc::new(Barrier::new(6));
    let arrived = Arc::new(AtomicUsize::new(0));
    let bs: Vec<_> = (0..6)
        .map(|_| {
            let (b, a) = (Arc::clone(&barrier), Arc::clone(&arrived));
            thread::spawn(move || {
                a.fetch_add(1, Ordering::SeqCst);
                let leader = b.wait().is_leader();
                (leader, a.load(Ordering::SeqCst))
            })
        })
        .collect();
    let res: Vec<_> = bs.into_iter().map(|h| h.join().unwrap()).collect();
    println!(
        "barrier: leaders {}, all saw 6 arrived: {}",
        res.iter().filter(|r| r.0).count(),
        res.iter().all(|r| r.1 == 6)
    );

    static ONCE: OnceLock<u64> = OnceLock::new();
    static INITS: AtomicUsize = AtomicUsize::new(0);
    let os: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(|| {
                *ONCE.get_or_init(|| {
                    INITS.fetch_add(1, Ordering::SeqCst);
                    1000
                })
            })
        })
        .collect();
    let vals: Vec<u64> = os.into_iter().map(|h| h.join().unwrap()).collect();
    println!(
        "oncelock: value {:?}, initialised {} time(s)",
        vals.iter().max(),
        INITS.load(Ordering::SeqCst)
    );
}

static DROPPED: AtomicUsize = AtomicUsize::new(0);
struct CountsDrop(u64);
impl Drop for CountsDrop {
    fn drop(&mut self) {
        DROPPED.fetch_add(self.0 as usize, Ordering::SeqCst);
    }
}

thread_local! {
    static LOCAL: Cell<u64> = const { Cell::new(7) };
    static GUARD: CountsDrop = const { CountsDrop(0) };
    static OWNED: std::cell::RefCell<Option<CountsDrop>> = const { std::cell::RefCell::new(None) };
}

fn thread_locals() {
    LOCAL.with(|l| l.set(100));
    let hs: Vec<_> = (1..=5u64)
        .map(|i| {
            thread::spawn(move || {
                let before = LOCAL.with(|l| l.get());
                LOCAL.with(|l| l.set(i));
                GUARD.with(|_| ());
                OWNED.with(|o| *o.borrow_mut() = Some(CountsDrop(i)));
                thread::yield_now();
                (before, LOCAL.with(|l| l.get()))
            })
        })
        .collect();
    let r: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    println!("thread_local: {r:?}, main's {}", LOCAL.with(|l| l.get()));
    // Joined threads ran their thread-local destructors before join returned.
    println!(
        "thread_local destructors: sum {}",
        DROPPED.load(Ordering::SeqCst)
    );
}

fn park_and_panic() {
    let flag = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&flag);
    let t = thread::spawn(move || {
        while f.load(Ordering::SeqCst) == 0 {
            thread::park();
        }
        "unparked"
    });
    flag.store(1, Ordering::SeqCst);
    t.thread().unpark();
    println!("park: {}", t.join().unwrap());
    std::panic::set_hook(Box::new(|_| {}));
    let r = thread::spawn(|| -> u32 { panic!("on purpose") }).join();
    let _ = std::panic::take_hook();
    println!(
        "panicking thread: join is Err: {}, message {:?}",
        r.is_err(),
        r.err()
            .and_then(|e| e.downcast_ref::<&str>().map(|s| s.to_string()))
    );
}

fn main() {
    spawn_join();
    channels();
    parallel_sum();
    locks();
    thread_locals();
    park_and_panic();
    println!("done");
}
