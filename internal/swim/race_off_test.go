//go:build !race

package swim_test

// raceEnabled shrinks the largest simulations: the race detector slows
// them about tenfold.
const raceEnabled = false
