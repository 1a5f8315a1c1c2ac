package smudge

import (
	"context"
	"strings"
	"testing"
)

// FuzzConfigFromEnv feeds arbitrary values to every SMUDGE_* variable:
// parsing never panics; a configuration returned without error is valid;
// every error names a variable or field; a key never appears in an error.
func FuzzConfigFromEnv(f *testing.F) {
	f.Add("250", "9999", "127.0.0.1", "10.0.0.1:9999, host:1", "true", "224.1.2.3", "30s", "info", "AAAAAAAAAAAAAAAAAAAAAA==", "256", "1400")
	f.Add("abc", "-1", "::", "[::1]:5", "maybe", "ff02::1", "-3s", "9", "not-a-key", "0", "99999")
	f.Add("", "", "", "", "", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, hb, port, ip, hosts, mc, mcAddr, dur, level, keys, maxB, maxP string) {
		env := map[string]string{
			EnvVarHeartbeatMillis: hb, EnvVarListenPort: port, EnvVarListenIP: ip,
			EnvVarInitialHosts: hosts, EnvVarMulticastEnabled: mc, EnvVarMulticastAddress: mcAddr,
			EnvVarRemoveDeadAfter: dur, EnvVarBroadcastTTL: dur, EnvVarLogLevel: level,
			EnvVarEncryptionKeys: keys, EnvVarMaxBroadcastBytes: maxB, EnvVarMaxPacketBytes: maxP,
			EnvVarAdvertiseAddress: ip, EnvVarMinPingTime: hb, EnvVarMulticastPort: port,
			EnvVarMaxMessageBytes: maxP, EnvVarGossipGroup: port, EnvVarPublishTTL: dur, EnvVarStateDir: hosts,
		}
		cfg, err := configFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("ConfigFromEnv returned no error but Validate says: %v", verr)
			}
			return
		}
		msg := err.Error()
		if !strings.Contains(msg, "SMUDGE_") {
			t.Fatalf("error names no variable: %q", msg)
		}
		if k := strings.TrimSpace(keys); len(k) >= 8 && strings.Contains(msg, k) {
			t.Fatalf("error shows the key material: %q", msg)
		}
	})
}

// FuzzAddress checks member address parsing: no panic; what parses is a
// concrete address; literal addresses need no name lookup.
func FuzzAddress(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.1:9999", "[::1]:5", "[fe80::1%eth0]:7", "host:1", "", ":", "[", "1.2.3.4:99999", "::ffff:1.2.3.4"} {
		f.Add(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no name lookups from a fuzzer
	f.Fuzz(func(t *testing.T, s string) {
		a, err := resolveAddress(ctx, s, 9999)
		if err != nil {
			return
		}
		if !a.IsValid() || a.Port() == 0 || a.Addr().Is4In6() {
			t.Fatalf("%q parsed to a bad address %v", s, a)
		}
		if checkHostAddress(s) != nil {
			t.Fatalf("%q resolved but fails its syntax check", s)
		}
	})
}
