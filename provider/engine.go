package provider

import (
	"context"
	"errors"
	"io"
	"time"
)

// Engine is everything the provider needs of a container engine, in the
// provider's own terms: no engine type crosses it, so the lifecycle can be
// driven (and unit-tested) over any implementation. provider/docker has the
// one on the Docker API; the tests have an in-memory fake.
//
// Errors for a missing object wrap ErrEngineNotFound, and for a name already
// taken ErrEngineConflict, so that the provider can tell them apart.
type Engine interface {
	Containers
	Checkpoints
	InPlace
	Images
	Networks
	// Info describes the engine.
	Info(ctx context.Context) (EngineInfo, error)
	// Events streams the lifecycle events of the containers bearing every
	// label in labels, until ctx ends or the stream breaks (then one error).
	Events(ctx context.Context, labels map[string]string) (<-chan ContainerEvent, <-chan error)
	// Close releases the connection to the engine.
	Close() error
}

// Containers runs containers: function containers, and the sandboxes that
// hold their network namespaces and addresses.
type Containers interface {
	// CreateContainer creates a container without starting it and returns
	// its ID.
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	StartContainer(ctx context.Context, id string) error
	// KillContainer stops a container at once (SIGKILL).
	KillContainer(ctx context.Context, id string) error
	// StopContainer stops a container, giving it its stop signal and up to
	// grace before SIGKILL, and returns once it stopped; a container that
	// does not run is left as it is.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	// RemoveContainer removes a container, running or not, with its
	// checkpoints.
	RemoveContainer(ctx context.Context, id string) error
	RenameContainer(ctx context.Context, id, name string) error
	PauseContainer(ctx context.Context, id string) error
	UnpauseContainer(ctx context.Context, id string) error
	InspectContainer(ctx context.Context, id string) (ContainerState, error)
	// ListContainers lists the containers, running or not, bearing every
	// label in labels.
	ListContainers(ctx context.Context, labels map[string]string) ([]Container, error)
	// WaitStopped returns once the container is not running.
	WaitStopped(ctx context.Context, id string) error
	// ContainerLogs streams a container's output, stdout and stderr merged,
	// one line per message, each prefixed with its RFC 3339 timestamp.
	ContainerLogs(ctx context.Context, id string, opts LogsOptions) (io.ReadCloser, error)
}

// Checkpoints takes and restores CRIU checkpoints of containers.
type Checkpoints interface {
	// CreateCheckpoint checkpoints a running container. With opts.Dir the
	// checkpoint is written to opts.Dir/opts.Name (a backup) instead of
	// where the engine keeps its container's checkpoints; with opts.Exit the
	// container stops once dumped.
	CreateCheckpoint(ctx context.Context, id string, opts CheckpointOptions) error
	// ListCheckpoints names the checkpoints the engine keeps for a container.
	ListCheckpoints(ctx context.Context, id string) ([]string, error)
	DeleteCheckpoint(ctx context.Context, id, name string) error
	// RestoreContainer starts a stopped container from one of its
	// checkpoints.
	RestoreContainer(ctx context.Context, id, checkpoint string) error
	// CheckpointDir is the directory the engine keeps (and restores) a
	// container's checkpoint in; the provider adds its description there.
	CheckpointDir(id, name string) string
}

// InPlace hibernates the processes of a container created with Init while the
// container itself stays up.
type InPlace interface {
	// DumpInPlace checkpoints the function's processes (everything under the
	// container's init) into dir and ends them; the container keeps running.
	// A failed dump leaves them running and dir removed.
	DumpInPlace(ctx context.Context, id, dir string) error
	// RestoreInPlace restores dir's processes into container id, starting the
	// container first when it is not running (its init then waits for the
	// restore instead of starting the function). A failed restore leaves dir
	// as it was, and the container up with no function.
	RestoreInPlace(ctx context.Context, id, dir string) error
	// InPlaceRunning says whether the container's init has a function process
	// (false while it is hibernated in place, or the container is stopped).
	InPlaceRunning(ctx context.Context, id string) (bool, error)
	// DropInPlace forgets the container's hibernation: its init starts the
	// function afresh on the container's next start (the provider restarts it).
	DropInPlace(ctx context.Context, id string) error
}

// Images finds, fetches and moves images.
type Images interface {
	// ImageID returns the ID of an image, by ID or reference.
	ImageID(ctx context.Context, ref string) (string, error)
	// PullImage fetches an image from its registry.
	PullImage(ctx context.Context, ref string) error
	// BuildImage builds an image from a build context (a tar stream with a
	// Dockerfile) and tags it.
	BuildImage(ctx context.Context, tag string, buildContext io.Reader) error
	// SaveImage streams an image as a tar archive (docker save).
	SaveImage(ctx context.Context, ref string) (io.ReadCloser, error)
	// LoadImage loads images from a tar archive (docker load).
	LoadImage(ctx context.Context, archive io.Reader) error
}

// Networks finds and creates the provider's network.
type Networks interface {
	InspectNetwork(ctx context.Context, name string) (NetworkInfo, error)
	CreateNetwork(ctx context.Context, name string, info NetworkInfo) error
}

// Errors an Engine wraps so that the provider can tell what went wrong.
var (
	ErrEngineNotFound = errors.New("no such object in the engine")
	ErrEngineConflict = errors.New("name already in use in the engine")
	// ErrEngineTaskExists: a container cannot start because the engine's
	// runtime (containerd) still has a task of it, left by an engine that
	// died while starting it. Every later start fails the same way; only new
	// containers get the replica back (see orphanTask).
	ErrEngineTaskExists = errors.New("the engine's runtime still has a task of the container")
	// ErrEngineUnreachable: the engine did not answer, or its connection
	// broke mid-call (it crashed or restarted): what the call did is unknown.
	ErrEngineUnreachable = errors.New("the engine did not answer")
	// ErrEngineTaskPaused: the engine's runtime keeps the container's task
	// paused although the engine does not count it as paused, so it refuses
	// both a pause and an unpause (see leftFrozen).
	ErrEngineTaskPaused = errors.New("the engine's runtime keeps the container's task paused")
)

// EngineInfo describes the engine the provider drives.
type EngineInfo struct {
	Version      string `json:"version"`
	APIVersion   string `json:"apiVersion"`
	RootDir      string `json:"rootDir"`
	Experimental bool   `json:"experimental"`
	CgroupDriver string `json:"cgroupDriver"`
	Kernel       string `json:"kernel"`
	Architecture string `json:"architecture"`
	// Runtimes are the OCI runtimes the engine can give a container.
	Runtimes []string `json:"runtimes,omitempty"`
	InPlace  bool     // the engine can create Init containers and hibernate them in place
}

// ContainerSpec is what a container is created from.
type ContainerSpec struct {
	Name   string
	Image  string
	Env    []string // KEY=value
	Labels map[string]string
	// NetworkOf is the container whose network namespace this one joins (a
	// function container joins its sandbox's); "" gives the container its
	// own, on Network at address IP (a sandbox).
	NetworkOf string
	Network   string
	IP        string
	// ReadOnlyRootfs mounts the image read-only; Tmpfs adds tmpfs mounts
	// (target -> mount options).
	ReadOnlyRootfs bool
	Tmpfs          map[string]string
	Mounts         []BindMount
	Resources      Resources
	// Runtime is the engine's OCI runtime for the container ("": its
	// default).
	Runtime string
	// Init runs the container under faas-criu-init (its first process; the
	// image's entrypoint and command become its child), for in-place hibernation.
	Init bool
}

// BindMount mounts a host file or directory into a container.
type BindMount struct {
	Source, Target string
	ReadOnly       bool
}

// Resources are a container's limits and reservations (0 is none).
type Resources struct {
	Memory            int64 // bytes
	MemorySwap        int64 // bytes of memory and swap together
	MemoryReservation int64 // bytes
	NanoCPUs          int64 // 1e9 is one CPU
	CPUShares         int64 // relative weight
}

// Container is a container as listed.
type Container struct {
	ID     string
	Name   string
	State  string // created, running, paused, restarting, exited, dead
	Labels map[string]string
	// Addresses maps each network the container is on to its IPv4 address
	// there (the fixed one it was created with, when it has one).
	Addresses map[string]string
}

// ContainerState is a container as inspected.
type ContainerState struct {
	Running bool // true while paused too
	Paused  bool
	Status  string // created, running, paused, restarting, exited, dead
}

// CheckpointOptions says how to checkpoint a container.
type CheckpointOptions struct {
	Name string
	Dir  string // "" for where the engine keeps its container's checkpoints
	Exit bool   // stop the container once dumped
}

// LogsOptions selects the output of a container.
type LogsOptions struct {
	Follow bool
	Tail   int       // the last Tail lines; 0 for all
	Since  time.Time // zero for all
}

// NetworkInfo describes a network.
type NetworkInfo struct {
	Subnet  string
	Gateway string
	Labels  map[string]string
	// Addresses are the IPv4 addresses in use on it.
	Addresses []string
}

// ContainerEvent is a change of a container's state.
type ContainerEvent struct {
	Action string // one of the Event… constants (others are ignored)
	ID     string
	Labels map[string]string
}

// Container event actions the provider acts on.
const (
	EventDie     = "die"
	EventOOM     = "oom"
	EventKill    = "kill"
	EventStop    = "stop"
	EventPause   = "pause"
	EventDestroy = "destroy"
	EventStart   = "start"
	EventUnpause = "unpause"
)
