package cli

// Version and Commit identify this build; main sets them from its linker
// flags before running a command.
var (
	Version = "dev"
	Commit  = "unknown"
)
