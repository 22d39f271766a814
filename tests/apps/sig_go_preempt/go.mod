module sigpreempt

go 1.19
