package checks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing/fstest"
	"time"

	"github.com/seed-c7906467/smudge/checks"
)

func ExampleParse() {
	file := `{
	  "resolv_has_8888": {"type": "file_contains", "path": "/etc/resolv.conf", "check": "8.8.8.8",
	                      "action": "echo nameserver 8.8.8.8 >> /etc/resolv.conf"},
	  "syslog_pidfile_exists": {"type": "file_exists", "path": "/var/run/syslog.pid"},
	  "nginx_running": {"type": "process_running", "path": "/usr/sbin/nginx", "check": "master process"}
	}`
	list, err := checks.Parse([]byte(file))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range list { // sorted by name
		fmt.Printf("%s: %s %s\n", c.Name, c.Type, c.Path)
	}
	// Output:
	// nginx_running: process_running /usr/sbin/nginx
	// resolv_has_8888: file_contains /etc/resolv.conf
	// syslog_pidfile_exists: file_exists /var/run/syslog.pid
}

func ExampleParse_errors() {
	for _, file := range []string{
		`{"a": {"type": "file_exists"}}`,
		`{"a": {"type": "file_exists", "path": "/x", "pth": "/y"}}`,
		`{"a": {"type": "file_exist", "path": "/x"}}`,
		"{\n\"a\": {\"type\": \"file_exists\", \"path\": \"/x\"},\n\"a\": {\"type\": \"file_exists\", \"path\": \"/y\"}\n}",
		`{"a": {"type": "process_running"}}`,
		`[]`,
	} {
		_, err := checks.Parse([]byte(file))
		fmt.Println(err)
	}
	// Output:
	// line 1: check "a": field "path": required
	// line 1: check "a": field "pth": unknown field; a check has the fields type, path, check, action
	// line 1: check "a": field "type": unknown type "file_exist"; known types: file_contains, file_exists, process_running
	// line 3: check "a": duplicate check name
	// line 1: check "a": fields "path" and "check" are both empty: give the executable (path), a text of its command line (check), or both
	// line 1: the file must hold a JSON object of checks (name: {type, path, check, action}), not an array
}

func ExampleRunner_Run() {
	list, err := checks.Parse([]byte(`{
	  "resolv_has_8888": {"type": "file_contains", "path": "/etc/resolv.conf", "check": "8.8.8.8",
	                      "action": "echo nameserver 8.8.8.8 >> /etc/resolv.conf"},
	  "hosts_exists": {"type": "file_exists", "path": "/etc/hosts"}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// A fake file system, for the example; by default the Runner looks at
	// the real one. Actions are off by default.
	r := &checks.Runner{FS: fstest.MapFS{
		"etc/hosts":       {Data: []byte("127.0.0.1 localhost\n")},
		"etc/resolv.conf": {Data: []byte("nameserver 1.1.1.1\n")},
	}}
	results := r.Run(context.Background(), list)
	checks.WriteTable(os.Stdout, results)
	// Output:
	// NAME             TYPE           RESULT  REASON                                       ACTION
	// hosts_exists     file_exists    PASS    /etc/hosts exists (regular file, 20 bytes)
	// resolv_has_8888  file_contains  FAIL    /etc/resolv.conf does not contain "8.8.8.8"  actions disabled on this node
	// 2 checks, 1 passed, 1 failed
}

func ExampleRunner_Run_actions() {
	dir, _ := os.MkdirTemp("", "checks-example")
	defer os.RemoveAll(dir)
	marker := dir + "/ready"
	list, err := checks.Parse([]byte(fmt.Sprintf(`{
	  "ready": {"type": "file_exists", "path": %q, "action": "echo creating it; touch %s"}
	}`, marker, marker)))
	if err != nil {
		fmt.Println(err)
		return
	}
	r := &checks.Runner{AllowActions: true, ActionTimeout: 10 * time.Second}
	res := r.Run(context.Background(), list)[0]
	fmt.Println("passed:", res.Passed)
	fmt.Println("action ran:", res.ActionRan, "exit code:", res.ActionExitCode)
	fmt.Print("output: ", res.ActionOutput)
	fmt.Println("fixed:", res.Fixed)
	// Output:
	// passed: false
	// action ran: true exit code: 0
	// output: creating it
	// fixed: true
}

// envSet is a custom check type: the environment variable named by the
// check's "check" field is set.
type envSet struct{ name string }

func (e envSet) Check(ctx context.Context, env checks.Env) (bool, string) {
	if _, ok := os.LookupEnv(e.name); ok {
		return true, "$" + e.name + " is set"
	}
	return false, "$" + e.name + " is not set"
}

func ExampleRegistry_Register() {
	reg := checks.NewRegistry() // the built-in types, and:
	err := reg.Register("env_set", func(s checks.Spec) (checks.Checker, error) {
		if s.Check == "" {
			return nil, checks.FieldErrorf(checks.FieldCheck, "required: the variable's name")
		}
		if s.Path != "" {
			return nil, checks.FieldErrorf(checks.FieldPath, "not used by type env_set")
		}
		return envSet{name: s.Check}, nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Join(reg.Types(), ", "))

	_, err = reg.Parse([]byte(`{"home": {"type": "env_set"}}`))
	fmt.Println(err)

	os.Setenv("EXAMPLE_CHECKS_VAR", "1")
	defer os.Unsetenv("EXAMPLE_CHECKS_VAR")
	list, _ := reg.Parse([]byte(`{"var": {"type": "env_set", "check": "EXAMPLE_CHECKS_VAR"}}`))
	res := (&checks.Runner{}).Run(context.Background(), list)[0]
	fmt.Println(res.Passed, res.Reason)
	// Output:
	// env_set, file_contains, file_exists, process_running
	// line 1: check "home": field "check": required: the variable's name
	// true $EXAMPLE_CHECKS_VAR is set
}

func ExampleNewReport() {
	rep := checks.NewReport([]checks.Result{
		{Name: "hosts_exists", Type: "file_exists", Passed: true, Reason: "/etc/hosts exists (regular file, 20 bytes)", Duration: 41 * time.Microsecond},
	})
	fmt.Println(rep.Summary())
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	// Output:
	// 1 check, 1 passed, 0 failed
	// {
	//   "version": 1,
	//   "checks": 1,
	//   "passed": 1,
	//   "failed": 0,
	//   "results": [
	//     {
	//       "name": "hosts_exists",
	//       "type": "file_exists",
	//       "passed": true,
	//       "reason": "/etc/hosts exists (regular file, 20 bytes)",
	//       "action_ran": false,
	//       "action_exit_code": 0,
	//       "action_output_truncated": false,
	//       "fixed": false,
	//       "duration_ns": 41000
	//     }
	//   ]
	// }
}
