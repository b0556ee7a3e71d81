module go-keygen
go 1.19
