package liveness_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/seed-c7906467/smudge"
	"github.com/seed-c7906467/smudge/liveness"
	"github.com/seed-c7906467/smudge/memnet"
)

// A node's liveness API, mounted under /liveness/ in a server of one's own.
func ExampleStore_Handler() {
	network := memnet.New() // in memory; leave Transport nil for UDP
	defer network.Close()
	ep, _ := network.Listen(netip.MustParseAddrPort("10.0.0.1:9999"))
	cfg := smudge.DefaultConfig()
	cfg.Transport = ep
	c, err := smudge.New(cfg)
	if err != nil {
		panic(err)
	}
	store, err := liveness.New(c, liveness.Config{
		ID:     "1",
		Token:  "a-token-of-24-characters", // shared by every node; random in real life
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err) // with a StateDir: errors.Is(err, liveness.ErrDecommissioned) if id 1 was
	}
	defer store.Close()
	if err := c.Start(context.Background()); err != nil {
		panic(err)
	}
	defer c.Shutdown()

	mux := http.NewServeMux()
	mux.Handle("/liveness/", http.StripPrefix("/liveness", store.Handler()))
	server := httptest.NewServer(mux) // http.ListenAndServe("127.0.0.1:8080", mux) in real life
	defer server.Close()

	res, err := http.Get(server.URL + "/liveness/hello")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(string(body))

	res, err = http.Post(server.URL+"/liveness/bye?id=1", "", nil) // no token
	if err != nil {
		panic(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, strings.TrimSpace(string(body)))
	// Output:
	// hello 1
	// 1
	//
	// 10.0.0.1:9999
	// 401 missing token: send the header "Authorization: Bearer TOKEN"
}
