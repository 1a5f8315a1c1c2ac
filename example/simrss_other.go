//go:build !unix

package main

// peakRSSMiB is not measured on this system.
func peakRSSMiB() float64 { return 0 }

// cpuSeconds is not measured on this system.
func cpuSeconds() float64 { return 0 }
