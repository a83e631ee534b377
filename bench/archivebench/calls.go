package main

import "callvault/bench/internal/synthcall"

// callFile is one synthetic call on disk, written by synthcall.Write.
type callFile = synthcall.File
