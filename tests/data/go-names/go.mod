module kubepki.test/go-names

go 1.19
