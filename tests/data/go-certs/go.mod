module kubepki.test/go-certs

go 1.19
