package smudge

import (
	"fmt"
	"math"
	"strconv"

	"github.com/seed-c7906467/smudge/internal/swim"
)

const (
	// EnvVarLifeguard switches Lifeguard (local health, nacks, dynamic
	// suspicion, suspicion checks and the buddy system) on or off as a
	// whole (strconv.ParseBool syntax). Default true.
	EnvVarLifeguard = "SMUDGE_LIFEGUARD"

	// EnvVarSuspicionMinMult sets the floor of a confirmed suspicion's
	// timeout, in the unit of SMUDGE_SUSPICION_MULT (protocol periods times
	// max(1, log10 n)); a decimal number such as 1.5. 0 means the default.
	EnvVarSuspicionMinMult = "SMUDGE_SUSPICION_MIN_MULT"
)

// Lifeguard defaults (see LifeguardConfig).
const (
	DefaultSuspicionMinMult       = swim.DefaultSuspicionMinMult
	DefaultSuspicionConfirmations = swim.DefaultSuspicionConfirmations
	DefaultSuspicionChecks        = swim.DefaultSuspicionChecks
	DefaultMaxLocalHealth         = swim.DefaultMaxLocalHealth
)

// LifeguardConfig tunes the refinements of failure detection from
// Lifeguard (Dadgar et al., 2018), and smudge's suspicion checks. The zero
// value is the default: every part on, with the default settings. Each part
// can be switched off, for comparison or to behave as plain SWIM.
type LifeguardConfig struct {
	// SuspicionMinMult is the floor of a suspicion's timeout once
	// SuspicionConfirmations members besides the first accuser have
	// accused the member too, in the unit of Config.SuspicionMult
	// (periods times max(1, log10 n)); it may be fractional and is capped
	// at SuspicionMult. An unconfirmed suspicion lasts SuspicionMult. 0
	// means DefaultSuspicionMinMult (0.5). SMUDGE_SUSPICION_MIN_MULT.
	SuspicionMinMult float64

	// SuspicionConfirmations is how many independent accusers bring a
	// suspicion's timeout down to its floor, at most 7. 0 means
	// DefaultSuspicionConfirmations (3).
	SuspicionConfirmations int

	// SuspicionChecks is how many random members a suspicion this node
	// raises is pushed to at once, for them to probe the suspect
	// themselves: a live suspect refutes within a round trip, a dead one is
	// confirmed. 0 means DefaultSuspicionChecks (3); negative turns the
	// checks off.
	SuspicionChecks int

	// MaxLocalHealth caps the local health score, by 1+which a node that
	// finds itself slow stretches its probe period and timeout. 0 means
	// DefaultMaxLocalHealth (8).
	MaxLocalHealth int

	// DisableLocalHealth turns the local health score off.
	DisableLocalHealth bool
	// DisableNacks turns nacks off: ping-req relays do not send them, and
	// this node does not expect them.
	DisableNacks bool
	// DisableDynamicSuspicion makes every suspicion last SuspicionMult (no
	// shortening by confirmations, no spreading of confirmed suspicions, no
	// last probe at once on another's verdict).
	DisableDynamicSuspicion bool
	// DisableBuddy turns the buddy system off: packets to a member
	// suspected here do not tell it so (it learns from gossip only).
	DisableBuddy bool
}

// Disabled returns l with every part switched off: plain SWIM with
// suspicion, as Smudge v1 does it (SMUDGE_LIFEGUARD=false).
func (l LifeguardConfig) Disabled() LifeguardConfig {
	l.DisableLocalHealth, l.DisableNacks, l.DisableDynamicSuspicion, l.DisableBuddy = true, true, true, true
	l.SuspicionChecks = -1
	return l
}

// apply copies l into the engine's configuration.
func (l LifeguardConfig) apply(e *swim.Config) {
	e.SuspicionMinMult = l.SuspicionMinMult
	e.SuspicionConfirmations = l.SuspicionConfirmations
	e.SuspicionChecks = l.SuspicionChecks
	e.MaxLocalHealth = l.MaxLocalHealth
	e.NoLocalHealth = l.DisableLocalHealth
	e.NoNacks = l.DisableNacks
	e.NoDynamicSuspicion = l.DisableDynamicSuspicion
	e.NoBuddy = l.DisableBuddy
}

// validate checks l.
func (l LifeguardConfig) validate() []error {
	var errs []error
	if m := l.SuspicionMinMult; m < 0 || math.IsNaN(m) || math.IsInf(m, 0) {
		errs = append(errs, fmt.Errorf("Lifeguard.SuspicionMinMult (%s) = %v: must be a positive number (0 means the default)", EnvVarSuspicionMinMult, m))
	}
	if n := l.SuspicionConfirmations; n < 0 || n > swim.MaxSuspicionConfirmations {
		errs = append(errs, fmt.Errorf("Lifeguard.SuspicionConfirmations = %d: out of range 0-%d", n, swim.MaxSuspicionConfirmations))
	}
	if n := l.MaxLocalHealth; n < 0 || n > 64 {
		errs = append(errs, fmt.Errorf("Lifeguard.MaxLocalHealth = %d: out of range 0-64", n))
	}
	return errs
}

// parseLifeguardEnv reads SMUDGE_LIFEGUARD and SMUDGE_SUSPICION_MIN_MULT.
func parseLifeguardEnv(get func(string) (string, bool), c *Config) []envError {
	var errs []envError
	if v, ok := get(EnvVarLifeguard); ok {
		if on, err := strconv.ParseBool(v); err != nil {
			errs = append(errs, badEnv(EnvVarLifeguard, v, "not a boolean (use true or false)"))
		} else if !on {
			c.Lifeguard = c.Lifeguard.Disabled()
		}
	}
	if v, ok := get(EnvVarSuspicionMinMult); ok {
		f, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
			errs = append(errs, badEnv(EnvVarSuspicionMinMult, v, "not a number (use a decimal such as 1.5)"))
		case f < 0:
			errs = append(errs, badEnv(EnvVarSuspicionMinMult, v, "negative"))
		default:
			c.Lifeguard.SuspicionMinMult = f
		}
	}
	return errs
}
