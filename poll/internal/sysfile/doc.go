// Package sysfile holds what the observer's rooms share about files:
// the one error type an operator sees for a file, socket or device the
// observer owns (Error), a file type's name for such messages (Kind), and
// openat(2) of a NUL-terminated path without the copy unix.Open makes.
//
// Allocation: OpenAt allocates nothing; building an Error does, on the
// failure paths only.
package sysfile
