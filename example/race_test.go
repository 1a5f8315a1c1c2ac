//go:build race

package main

// raceEnabled: the end-to-end tests build the binary with -race too.
const raceEnabled = true
