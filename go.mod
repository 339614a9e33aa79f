module github.com/payrouter/payrouter

go 1.26.8
