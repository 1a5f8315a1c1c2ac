//go:build !race

package smudge

const raceEnabled = false
