module github.com/seed-c7906467/smudge

go 1.26

require (
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/net v0.62.0 // indirect
)
