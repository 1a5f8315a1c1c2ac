package liveness_test

// The page in a real browser: headless Chromium, driven with chromedp (a
// test-only dependency). Without Chromium the test skips and says how to
// install it; SMUDGE_REQUIRE_CHROMIUM=1 makes that a failure (for CI).
// SMUDGE_LIVENESS_SCREENSHOT=path saves a PNG of the page (docs/liveness.png).

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-c7906467/smudge/liveness"
	"github.com/seed-c7906467/smudge/memnet"
)

// findChromium returns the browser's path, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped in -short mode")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "headless Chromium not found, so the page is not tested in a browser: install it (Debian/Ubuntu: apt-get install -y chromium)"
	if os.Getenv("SMUDGE_REQUIRE_CHROMIUM") != "" {
		t.Fatal(msg + " or unset SMUDGE_REQUIRE_CHROMIUM")
	}
	t.Skip(msg)
	return ""
}

// browser starts headless Chromium; it is closed when the test ends.
func browser(t *testing.T, chrome string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // root in containers has no user namespace sandbox
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(760, 400),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// tableRows returns the cells' text of every row of the members table.
const tableRows = `Array.from(document.querySelectorAll('#members tbody tr')).map(r => Array.from(r.cells).map(c => c.innerText.trim()))`

func TestPageInHeadlessChromium(t *testing.T) {
	chrome := findChromium(t)
	network := memnet.New(memnet.WithLatency(time.Millisecond, time.Millisecond), memnet.WithSeed(9))
	t.Cleanup(func() { network.Close() })
	var nodes []*memNode
	for i := 1; i <= 4; i++ {
		seed := ""
		if i > 1 {
			seed = "10.0.0.1:9999"
		}
		n, err := startNode(t, network, i, seed, liveness.Config{})
		require.NoError(t, err)
		nodes = append(nodes, n)
	}
	waitFor(t, 30*time.Second, "every id at node 1", func() bool { return helloLine(nodes[0], 1) == "1 2 3 4" })
	require.NoError(t, nodes[0].s.Decommission("4"))
	waitFor(t, 15*time.Second, "node 4 to leave", func() bool { return memberStatus(nodes[0], "4") == "LEFT" })

	server := httptest.NewServer(nodes[0].handler)
	t.Cleanup(server.Close)
	ctx := browser(t, chrome)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(760, 400),
		chromedp.Navigate(server.URL),
		chromedp.WaitVisible(chromedp.CSS("#members")),
	))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](tableRows))
	require.NoError(t, err)
	require.Len(t, rows, 4, "%q", rows)
	want := [][3]string{
		{"1 (this node)", "10.0.0.1:9999", "ALIVE"},
		{"2", "10.0.0.2:9999", "ALIVE"},
		{"3", "10.0.0.3:9999", "ALIVE"},
		{"4", "10.0.0.4:9999", "LEFT decommissioned"},
	}
	for i, w := range want {
		require.Len(t, rows[i], 4)
		assert.Equal(t, w, [3]string{rows[i][0], rows[i][1], rows[i][2]}, "row %d", i)
	}
	assert.Equal(t, "this node", rows[0][3])
	assert.Regexp(t, `^\d+\.\d s ago$`, rows[1][3], "last heard")
	dec, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#decommissioned")))
	require.NoError(t, err)
	assert.Equal(t, "4", strings.TrimSpace(dec))
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "1 · smudge liveness", title)

	if path := os.Getenv("SMUDGE_LIVENESS_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, png, 0o644))
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}

	// The page reloads itself: a newcomer shows up without anyone reloading.
	_, err = startNode(t, network, 5, "10.0.0.1:9999", liveness.Config{})
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](tableRows))
		if err == nil && len(rows) == 5 && rows[4][0] == "5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not show node 5 by itself within 30 s: %q %v", rows, err)
		}
		time.Sleep(200 * time.Millisecond) // the page reloads every 2 s; this only paces the checks
	}
}

func TestPageEscapesHostileIDsInChromium(t *testing.T) {
	chrome := findChromium(t)
	network := memnet.New()
	t.Cleanup(func() { network.Close() })
	ids := []string{`<script>document.title='pwned'</script>`, `"><img/src/onerror=document.title='pwned'>`}
	a, err := startNode(t, network, 1, "", liveness.Config{ID: ids[0]})
	require.NoError(t, err)
	_, err = startNode(t, network, 2, "10.0.0.1:9999", liveness.Config{ID: ids[1]})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "both ids", func() bool { return len(strings.Fields(helloLine(a, 1))) == 2 })

	server := httptest.NewServer(a.handler)
	t.Cleanup(server.Close)
	ctx := browser(t, chrome)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(server.URL), chromedp.WaitVisible(chromedp.CSS("#members"))))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](tableRows))
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, ids[0]+" (this node)", rows[0][0], "shown as text")
	assert.Equal(t, ids[1], rows[1][0], "shown as text")
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, ids[0]+" · smudge liveness", title, "no script ran")
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('script, img').length`))
	require.NoError(t, err)
	assert.Zero(t, n, "no element came from an id")
}
