module keystation

go 1.26.8

require (
	github.com/go-ole/go-ole v1.3.0
	github.com/google/uuid v1.6.0
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/yusufpapurcu/wmi v1.2.4
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0
)
