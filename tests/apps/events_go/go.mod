module umonevents

go 1.19
