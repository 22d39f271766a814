module vdsotest

go 1.19
