//go:build race

package sim_test

// raceEnabled shrinks the largest simulations: the race detector slows
// them about tenfold.
const raceEnabled = true
