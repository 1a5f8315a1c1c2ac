// Package checks runs checks of a node's state, and actions that fix what
// fails: the local half of smudge's distributed check runner.
//
// # The checks file
//
// A checks file is a JSON object (at most MaxFileBytes, 1 MiB) whose keys
// are check names and whose values are objects with four string fields:
//
//	{
//	  "resolv_has_8888": {
//	    "type": "file_contains",
//	    "path": "/etc/resolv.conf",
//	    "check": "8.8.8.8",
//	    "action": "echo nameserver 8.8.8.8 >> /etc/resolv.conf"
//	  },
//	  "syslog_pidfile_exists": {"type": "file_exists", "path": "/var/run/syslog.pid"},
//	  "nginx_running": {"type": "process_running", "path": "/usr/sbin/nginx"}
//	}
//
// A name is 1 to MaxNameBytes bytes of printable characters. The built-in
// types:
//
//   - file_exists: path exists, whatever its kind (as test -e; symbolic
//     links are followed). check must be empty.
//   - file_contains: the file path contains the text check, byte for byte
//     (no pattern), anywhere, also across lines. The file is streamed in
//     bounded memory.
//   - process_running: a process runs whose executable is path and whose
//     command line (its arguments joined by spaces) contains check. Either
//     may be empty, not both. The executable is the target of
//     /proc/PID/exe (an executable deleted or replaced since the process
//     started also matches); when that link cannot be read, as for another
//     user's process when not root, argv[0] is compared instead, and the
//     reason says which matched. This process itself is never matched.
//
// Paths are absolute and clean. action, optional, is a shell command run
// with /bin/sh -c when the check fails (and the Runner allows actions).
// Field names are case-sensitive.
//
// Parse and ParseFile reject, with a *ParseError that names the check and
// the field: an empty file, a file that is not a JSON object or has data
// after it, a syntax error (with its line and column), duplicate check
// names or fields (which encoding/json would silently merge), unknown
// fields, values that are not strings, unknown types, missing fields,
// fields the type does not use, bad names, and files larger than the
// limit.
//
// New types are added with Register (or Registry.Register): a Factory
// validates a Spec and returns a Checker.
//
// # Running checks
//
// A Runner runs checks concurrently (Runner.Concurrency), each within
// Runner.CheckTimeout. A check that cannot look at what it checks (a
// permission error, say) fails and says why: it never passes. When a check
// fails and has an action, the action runs only if Runner.AllowActions is
// set (the default is off): in its own process group, killed whole after
// Runner.ActionTimeout, its combined output kept up to
// Runner.MaxOutputBytes. Then the check runs again to see whether the
// action fixed it.
//
// Checks look at the Runner's FS and Proc file systems, the real ones by
// default; tests pass fake ones (testing/fstest.MapFS, os.DirFS of a
// directory made to look like /proc).
//
// # Results
//
// Run returns one Result per check, sorted by name. NewReport wraps them
// with counts; its JSON form is the stable schema of results, version
// ReportVersion:
//
//	{
//	  "version": 1,
//	  "checks": 2, "passed": 1, "failed": 1,
//	  "results": [
//	    {
//	      "name": "resolv_has_8888",         // the check's name
//	      "type": "file_contains",           // its type
//	      "passed": false,                   // did the check pass (before any action)
//	      "reason": "/etc/resolv.conf does not contain \"8.8.8.8\"",
//	      "action_ran": true,                // was the action started
//	      "action_exit_code": 0,             // its exit status; -1 if killed; 0 if not run
//	      "action_output": "",               // stdout+stderr, truncated (omitted if empty)
//	      "action_output_truncated": false,
//	      "action_note": "",                 // why it did not run, or how it ended abnormally (omitted if empty)
//	      "fixed": true,                     // did the check pass when run again after the action
//	      "recheck_reason": "/etc/resolv.conf contains \"8.8.8.8\"", // (omitted if there was no second run)
//	      "duration_ns": 3154021             // check + action + second run, nanoseconds
//	    },
//	    ...
//	  ]
//	}
//
// Fields may be added in later versions; none is removed or changes
// meaning without a new version number.
package checks
