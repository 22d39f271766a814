module umontest

go 1.19
