module umonnet

go 1.19
