package provider

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// record is what the provider keeps on disk about one function. Docker holds
// the containers; the record holds the intent: definition, replica target,
// whether the function is hibernated, and its checkpoints.
type record struct {
	Deployment types.FunctionDeployment `json:"deployment"`
	// ImageID is the image the deployment's tag named when it was deployed.
	ImageID   string    `json:"imageID,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Replicas is the target replica count while the function is awake.
	Replicas int `json:"replicas"`
	// State is api.StateAwake, api.StatePaused or api.StateHibernated.
	State string `json:"state,omitempty"`
	// SleptReplicas is how many replicas were running when it went to sleep.
	SleptReplicas int        `json:"sleptReplicas,omitempty"`
	SleptAt       *time.Time `json:"sleptAt,omitempty"`
	// SleepReason says why it sleeps: "scaled to zero", "idle", "memory budget".
	SleepReason string `json:"sleepReason,omitempty"`
	// SleptMemory is the working set it had when it went to sleep.
	SleptMemory int64  `json:"sleptMemory,omitempty"`
	Invocations uint64 `json:"invocations"`
	// Checkpoints holds the newest checkpoint of each hibernated replica.
	Checkpoints map[int]CheckpointInfo `json:"checkpoints,omitempty"`
	// InPlace holds the dumps in place of the replicas of a function with
	// api.LabelInPlace (see inplace.go): an intent until Done.
	InPlace map[int]InPlaceDump `json:"inPlace,omitempty"`
	// LastWake says how the function last came back from sleep.
	LastWake *WakeInfo `json:"lastWake,omitempty"`
	// FromBackup says a replica was last brought back from a backup.
	FromBackup *BackupInfo `json:"fromBackup,omitempty"`
	// StateLost says a replica's memory state was lost, when and why; it is
	// kept until the next deploy (see noteStateLost).
	StateLost *LossInfo `json:"stateLost,omitempty"`
	// Importing marks a function received by migration whose import has not
	// finished; a provider that finds one at start removes it.
	Importing bool `json:"importing,omitempty"`
}

// spec identifies what the function's containers are made from.
func (r *record) spec() string { return specHash(r.Deployment, r.ImageID) }

// store persists records and secrets under the state directory.
//
//	<state>/instance-id
//	<state>/functions/<namespace>/<name>.json
//	<state>/secrets/<namespace>/<name>
type store struct {
	dir string
	// locks holds a *sync.Mutex per record path: writes of one record take
	// turns, writes of different records do not. One lock for every record
	// made the wakes of a fan-out queue behind each other's fsyncs (two per
	// write, 1-60 ms each on this machine's disk when it is busy): 20
	// functions woken at once write about 80 records (bench/tried.md 31).
	locks sync.Map
	// saves counts the records written (each one synced: tests count them).
	saves atomic.Int64
}

// lock takes the write lock of the record at path and returns its unlock.
func (s *store) lock(path string) func() {
	m, _ := s.locks.LoadOrStore(path, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func openStore(dir string) (*store, error) {
	for _, d := range []string{dir, filepath.Join(dir, "functions"), filepath.Join(dir, "secrets")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	return &store{dir: dir}, nil
}

// instanceID returns the provider's stable identity, created on first use.
// Containers carry it in a label so that two providers sharing one engine
// never touch each other's containers.
func (s *store) instanceID() (string, error) {
	p := filepath.Join(s.dir, "instance-id")
	b, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read instance id: %w", err)
	}
	buf := make([]byte, 6)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	id := hex.EncodeToString(buf)
	if err := writeFileAtomic(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write instance id: %w", err)
	}
	return id, nil
}

func (s *store) recordPath(ns, name string) string {
	return filepath.Join(s.dir, "functions", ns, name+".json")
}

func (s *store) saveRecord(ns, name string, rec *record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	path := s.recordPath(ns, name)
	defer s.lock(path)()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := writeRecordFile(path, b, 0o600); err != nil {
		return fmt.Errorf("save %s.%s: %w", name, ns, err)
	}
	s.saves.Add(1)
	return nil
}

func (s *store) deleteRecord(ns, name string) error {
	path := s.recordPath(ns, name)
	defer s.lock(path)()
	err := os.Remove(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// loadRecords reads every record; unreadable ones are reported, not dropped
// silently.
func (s *store) loadRecords() (map[api.Key]*record, []error) {
	out := map[api.Key]*record{}
	var errs []error
	nss, err := os.ReadDir(filepath.Join(s.dir, "functions"))
	if err != nil {
		return out, []error{err}
	}
	for _, ns := range nss {
		if !ns.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.dir, "functions", ns.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			name, ok := strings.CutSuffix(f.Name(), ".json")
			if !ok {
				continue
			}
			b, err := os.ReadFile(filepath.Join(s.dir, "functions", ns.Name(), f.Name()))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rec := &record{}
			if err := json.Unmarshal(b, rec); err != nil {
				errs = append(errs, fmt.Errorf("record %s/%s: %w", ns.Name(), f.Name(), err))
				continue
			}
			if rec.State == "" {
				rec.State = api.StateAwake // written before the state had a name when awake
			}
			out[api.Key{Namespace: ns.Name(), Name: name}] = rec
		}
	}
	return out, errs
}

func (s *store) secretDir(ns string) string { return filepath.Join(s.dir, "secrets", ns) }

func (s *store) secretPath(ns, name string) string {
	return filepath.Join(s.secretDir(ns), name)
}

// writeFileAtomic writes data to a temporary file next to path, syncs it and
// renames it over path, so that a crash leaves either the old or the new file.
// writeRecordFile writes a record's file (a variable for the tests, which
// slow it down to see which writes wait for which).
var writeRecordFile = writeFileAtomic

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
