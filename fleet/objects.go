package fleet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// Checkpoints leave the box: each function's newest checkpoint (taken when
// it hibernated) or backup (taken while it ran) is kept in a JetStream
// object store replicated like the KV buckets (min(3, boxes) copies), as a
// migration archive (checkpoint/archive: a zstd-compressed tar) cut into
// chunks. Any box can fetch it and restore the function from it.

// objectsBucket is the object store's bucket.
const objectsBucket = "faas_criu_checkpoints"

// ObjectChunk is the size of the chunks an archive is stored in: well
// under NATS's 1 MiB message limit, and big enough that a 100 MB
// checkpoint is a few hundred messages.
var ObjectChunk uint32 = 256 << 10

// Kinds of stored checkpoints.
const (
	KindCheckpoint = "checkpoint" // taken when the function hibernated (or migrated)
	KindBackup     = "backup"     // taken while it kept running
)

// ErrNoObject says the store holds no checkpoint of a function.
var ErrNoObject = errors.New("fleet: no stored checkpoint")

// ErrOlder says a checkpoint was not stored because the store holds a newer
// one of the function: the newest wins.
var ErrOlder = errors.New("fleet: a newer checkpoint is stored")

// ErrReplaced says the stored checkpoint changed since its Meta was read.
var ErrReplaced = errors.New("fleet: the stored checkpoint was replaced meanwhile")

// Meta describes a function's stored checkpoint.
type Meta struct {
	Key  api.Key `json:"key"`
	Box  string  `json:"box"`  // the box that stored it
	Kind string  `json:"kind"` // KindCheckpoint or KindBackup
	// TakenAt is when its (oldest) replica's checkpoint was taken: the
	// state a restore brings back is from then.
	TakenAt time.Time `json:"takenAt"`
	Size    int64     `json:"size"`  // bytes stored (compressed)
	Bytes   int64     `json:"bytes"` // checkpoint bytes before compression
	Chunks  int       `json:"chunks"`
	Object  string    `json:"object"`
}

// Objects is the fleet's store of checkpoints, one object per function:
// a newer checkpoint replaces the older (the store keeps no history, so
// its size is bounded by the functions, not by time).
type Objects struct {
	f *Fleet
	// MaxBytes bounds what Fetch unpacks (the checkpoints' total size).
	MaxBytes int64
}

// Objects returns the fleet's checkpoint store. Its methods fail with a
// not-joined error until the box has joined.
func (f *Fleet) Objects() *Objects { return &Objects{f: f, MaxBytes: 4 << 30} }

// objectsConfig bounds the store to maxBytes (per server): full, it
// refuses a new chunk (its stream discards new), and the upload fails,
// while the buckets and the calls' stream keep their room.
func objectsConfig(replicas int, maxBytes int64) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket: objectsBucket, Replicas: replicas, Storage: jetstream.FileStorage, MaxBytes: maxBytes,
		Description: "faas-criu checkpoints and backups: each function's newest, a compressed migration archive",
	}
}

func (o *Objects) store() (jetstream.ObjectStore, error) {
	o.f.mu.RLock()
	defer o.f.mu.RUnlock()
	if o.f.objects == nil {
		return nil, errors.New("fleet: this box has not joined the cluster yet")
	}
	return o.f.objects, nil
}

func objectName(k api.Key) string { return key(k.Namespace, k.Name) }

// Put stores the checkpoint unpacked in dir (a migration archive's layout:
// manifest.json and checkpoints/REPLICA/, see archive.SaveManifest) as
// key's newest, replacing the one stored, unless that one is newer
// (ErrOlder).
func (o *Objects) Put(ctx context.Context, k api.Key, kind, dir string) (Meta, error) {
	m, err := archive.LoadManifest(dir)
	if err != nil {
		return Meta{}, fmt.Errorf("store checkpoint of %s: %w", k, err)
	}
	meta := Meta{Key: k, Box: o.f.cfg.Box, Kind: kind, TakenAt: takenAt(m), Object: objectName(k)}
	for _, r := range m.Replicas {
		meta.Bytes += r.Checkpoint.Bytes
	}
	if cur, err := o.Newest(ctx, k); err == nil && cur.TakenAt.After(meta.TakenAt) {
		return cur, fmt.Errorf("store checkpoint of %s taken at %s: %w (taken at %s on %s)", k, meta.TakenAt.Format(time.RFC3339Nano), ErrOlder, cur.TakenAt.Format(time.RFC3339Nano), cur.Box)
	}
	if err := o.room(ctx, k, dir); err != nil {
		return Meta{}, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := archive.WriteDir(pw, dir)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	return o.put(ctx, meta, pr)
}

// ErrStoreFull says a checkpoint was not stored because the object store
// has no room for it beside what it holds.
var ErrStoreFull = errors.New("fleet: the object store is full")

// room refuses the checkpoint in dir unless the store has room for it
// (compressed, counted by compressing it once) beside what it holds, the
// function's stored one included (replaced only once the new one is in).
// The store's stream refuses a chunk past its bound too, but a Put that
// runs into it is costly: the server then counts the refused chunks as
// still pending, and refuses what would fit until its leader changes
// (nats-server 2.15, seen while writing TestFullObjectStore). Puts from
// other boxes at the same moment may still run into it.
func (o *Objects) room(ctx context.Context, k api.Key, dir string) error {
	obs, err := o.store()
	if err != nil {
		return err
	}
	st, err := obs.Status(ctx)
	if err != nil {
		return fmt.Errorf("store checkpoint of %s: %w", k, err)
	}
	nfo := st.(*jetstream.ObjectBucketStatus).StreamInfo()
	limit, used := nfo.Config.MaxBytes, int64(nfo.State.Bytes)
	if limit <= 0 {
		return nil
	}
	var n countWriter
	if _, err := archive.WriteDir(&n, dir); err != nil {
		return fmt.Errorf("store checkpoint of %s: %w", k, err)
	}
	// Each chunk is a message, with its subject and headers.
	need := int64(n) + int64(n)/int64(ObjectChunk)*256 + 64<<10
	if used+need > limit {
		return fmt.Errorf("store checkpoint of %s (%d bytes compressed): %w: %d of its %d bytes used", k, int64(n), ErrStoreFull, used, limit)
	}
	return nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// PutStream stores an archive already compressed (a migration's stream) as
// key's newest checkpoint, taken now.
func (o *Objects) PutStream(ctx context.Context, k api.Key, kind string, r io.Reader) (Meta, error) {
	return o.put(ctx, Meta{Key: k, Box: o.f.cfg.Box, Kind: kind, TakenAt: time.Now().UTC(), Object: objectName(k)}, r)
}

// put stores r as meta's object (see upload), unless the one stored is
// newer (ErrOlder).
func (o *Objects) put(ctx context.Context, meta Meta, r io.Reader) (Meta, error) {
	om := jetstream.ObjectMeta{
		Description: meta.Kind + " of " + meta.Key.String(),
		Metadata: map[string]string{
			"namespace": meta.Key.Namespace, "name": meta.Key.Name, "box": meta.Box, "kind": meta.Kind,
			"taken": meta.TakenAt.Format(time.RFC3339Nano), "bytes": strconv.FormatInt(meta.Bytes, 10),
		},
	}
	keep := func(prev *jetstream.ObjectInfo) error {
		if cur := metaOf(meta.Key, prev); cur.TakenAt.After(meta.TakenAt) {
			return fmt.Errorf("taken at %s: %w (taken at %s on %s)", meta.TakenAt.Format(time.RFC3339Nano), ErrOlder, cur.TakenAt.Format(time.RFC3339Nano), cur.Box)
		}
		return nil
	}
	info, err := o.upload(ctx, meta.Box, meta.Object, om, r, keep)
	if err != nil {
		return Meta{}, fmt.Errorf("store checkpoint of %s: %w", meta.Key, err)
	}
	meta.Size, meta.Chunks = int64(info.Size), int(info.Chunks)
	return meta, nil
}

// upload stores r as object in two steps, so that the object's
// description never names chunks the store does not hold. The store
// publishes a description without waiting for its chunks and purges them
// when one is refused (the store full), so a Put straight under the
// object's name that failed left, until it was undone, a description
// naming nothing: a box reading it then (any replica answers reads, one
// behind included) found the stored checkpoint "replaced", or lost it
// when the undo itself read a replica behind
// (TestStreamPastBoundKeepsStored); an image so refused was taken as
// stored (TestRefusedImageNotTakenAsStored). So the data is stored under a
// name of its own (stage), and only once all of it is in does the
// object's description name its chunks (rename), by a compare-and-set on
// what the stream's leader holds, unless keep refuses to replace the one
// stored there. om's Name and chunk size are upload's.
func (o *Objects) upload(ctx context.Context, box, object string, om jetstream.ObjectMeta, r io.Reader, keep func(prev *jetstream.ObjectInfo) error) (*jetstream.ObjectInfo, error) {
	obs, err := o.store()
	if err != nil {
		return nil, err
	}
	st, err := o.stream(ctx)
	if err != nil {
		return nil, err
	}
	stage := stageName(box, object)
	om.Name = stage
	// The store makes a chunk of each Read: full reads make full chunks
	// (a pipe's reads are as short as the compressor's writes).
	om.Opts = &jetstream.ObjectMetaOptions{ChunkSize: ObjectChunk}
	info, err := obs.Put(ctx, om, fullReader{r})
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errStoreFailed && strings.Contains(apiErr.Description, "maximum bytes exceeded") {
		err = fmt.Errorf("%w: a chunk past its bound was refused (%w)", ErrStoreFull, err)
	} else if err == nil {
		err = o.rename(ctx, st, object, info, keep)
	}
	if err != nil {
		if derr := o.dropStage(st, stage, object); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop the staged upload: %w", derr))
		}
		return nil, err
	}
	// Its description only: its chunks are the object's now.
	if err := o.dropStage(st, stage, ""); err != nil {
		slog.Warn("fleet: a staged upload's description stays", "object", stage, "err", err)
	}
	return info, nil
}

// errStoreFailed is the server's answer to a message it did not store
// (JSStreamStoreFailedF), with "maximum bytes exceeded" past the stream's
// bound.
const errStoreFailed jetstream.ErrorCode = 10077

// stageSeq tells apart the uploads of one box.
var stageSeq atomic.Uint64

// stageName is where an upload of object from box is stored until it is
// whole: unique, so that two uploads of one function (the uploader's and
// a migration's) never replace each other's chunks.
func stageName(box, object string) string {
	return fmt.Sprintf("upload/%s/%d-%d/%s", box, time.Now().UnixNano(), stageSeq.Add(1), object)
}

func metaSubject(name string) string {
	return fmt.Sprintf("$O.%s.M.%s", objectsBucket, base64.URLEncoding.EncodeToString([]byte(name)))
}

func chunkSubject(nuid string) string { return fmt.Sprintf("$O.%s.C.%s", objectsBucket, nuid) }

func (o *Objects) stream(ctx context.Context) (jetstream.Stream, error) {
	js, err := jetstream.New(o.f.nc)
	if err != nil {
		return nil, err
	}
	return js.Stream(ctx, "OBJ_"+objectsBucket)
}

// rename makes object the staged one info describes: its description,
// naming the staged chunks, replaces the one stored, unless keep refuses
// (given the one stored); then the replaced one's chunks go.
func (o *Objects) rename(ctx context.Context, st jetstream.Stream, object string, info *jetstream.ObjectInfo, keep func(prev *jetstream.ObjectInfo) error) error {
	js, err := jetstream.New(o.f.nc)
	if err != nil {
		return err
	}
	staged := *info
	staged.Name = object
	data, err := json.Marshal(&staged)
	if err != nil {
		return err
	}
	for try := 1; ; try++ {
		prev, seq, err := o.last(ctx, metaSubject(object))
		if err != nil {
			return err
		}
		if prev != nil && !prev.Deleted {
			if err := keep(prev); err != nil {
				return err
			}
		}
		m := nats.NewMsg(metaSubject(object))
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		m.Data = data
		// Not replacing what another box stored since the read.
		_, err = js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(seq))
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) && try < 5 {
			continue
		}
		if err != nil {
			return err
		}
		if prev != nil && !prev.Deleted && prev.NUID != info.NUID {
			// Unreferenced now; if this fails they only take room.
			_ = st.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(prev.NUID)))
		}
		return nil
	}
}

// last reads the description stored under subject from the stream's
// leader (nil and 0 when there is none): a direct read, answered by any
// replica, may be behind.
func (o *Objects) last(ctx context.Context, subject string) (*jetstream.ObjectInfo, uint64, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subject})
	msg, err := o.f.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.OBJ_"+objectsBucket, req)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s from the leader: %w", subject, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("read %s from the leader: %w", subject, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("read %s from the leader: %w", subject, resp.Error)
	}
	if resp.Message == nil {
		return nil, 0, fmt.Errorf("read %s from the leader: an empty answer", subject)
	}
	var info jetstream.ObjectInfo
	if err := json.Unmarshal(resp.Message.Data, &info); err != nil {
		return nil, 0, fmt.Errorf("read %s from the leader: %w", subject, err)
	}
	return &info, resp.Message.Seq, nil
}

// dropStage removes a staged upload's description, and its chunks too
// when object is named and does not name them (a rename whose answer was
// lost may have gone through). Not under the upload's context: it may be
// what ended.
func (o *Objects) dropStage(st jetstream.Stream, stage, object string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if object != "" {
		// The store purges them when a Put fails, but not when its
		// context ended while waiting for the last acknowledgements.
		info, _, err := o.last(ctx, metaSubject(stage))
		if err != nil {
			return err
		}
		cur, _, err := o.last(ctx, metaSubject(object))
		if err != nil {
			return err
		}
		if info != nil && (cur == nil || cur.NUID != info.NUID) {
			if err := st.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(info.NUID))); err != nil {
				return err
			}
		}
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject(metaSubject(stage)))
}

// fullReader fills each Read's buffer unless the stream ends.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// takenAt is when the oldest replica's checkpoint was taken.
func takenAt(m *archive.Manifest) time.Time {
	var t time.Time
	for _, r := range m.Replicas {
		if at := r.Checkpoint.TakenAt; t.IsZero() || at.Before(t) {
			t = at
		}
	}
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC()
}

// Newest describes key's stored checkpoint (ErrNoObject: none).
func (o *Objects) Newest(ctx context.Context, k api.Key) (Meta, error) {
	obs, err := o.store()
	if err != nil {
		return Meta{}, err
	}
	info, err := obs.GetInfo(ctx, objectName(k))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Meta{}, fmt.Errorf("%s: %w", k, ErrNoObject)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("stored checkpoint of %s: %w", k, err)
	}
	return metaOf(k, info), nil
}

func metaOf(k api.Key, info *jetstream.ObjectInfo) Meta {
	md := info.Metadata
	at, _ := time.Parse(time.RFC3339Nano, md["taken"])
	n, _ := strconv.ParseInt(md["bytes"], 10, 64)
	return Meta{
		Key: k, Box: md["box"], Kind: md["kind"], TakenAt: at, Bytes: n,
		Size: int64(info.Size), Chunks: int(info.Chunks), Object: info.Name,
	}
}

// Fetch unpacks the stored checkpoint m describes into destDir (empty or
// missing), as Put was given it: manifest.json and checkpoints/REPLICA/.
// The archive is vetted as a migration's is, and its digest checked. If
// the object was replaced since m was read, it fails with ErrReplaced.
//
// The store reads an object's chunks through a consumer the server may
// place on a replica still applying the last ones: that read ends short
// and fails the digest check (jetstream.ErrDigestMismatch) though the
// stored object is whole (TestFullObjectStore, 1 run in 6 under load). So
// such a read is started again, destDir emptied, within readLag.
func (o *Objects) Fetch(ctx context.Context, m Meta, destDir string) error {
	obs, err := o.store()
	if err != nil {
		return err
	}
	return readWhole(ctx, "stored checkpoint of "+m.Key.String(), func() (bool, error) {
		err := o.fetchOnce(ctx, obs, m, destDir)
		if !errors.Is(err, jetstream.ErrDigestMismatch) {
			return false, err
		}
		if cerr := emptyDir(destDir); cerr != nil {
			return false, errors.Join(err, fmt.Errorf("empty %s for another read: %w", destDir, cerr))
		}
		return true, err
	})
}

// readWhole calls once until it succeeds, fails other than short (a read
// that ended short of the stored object: jetstream.ErrDigestMismatch), or
// readLag has passed, every 100 ms: a replica behind catches up within it.
func readWhole(ctx context.Context, what string, once func() (short bool, err error)) error {
	deadline := time.Now().Add(readLag)
	for tries := 1; ; tries++ {
		short, err := once()
		if !short {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (%d reads of the %s in %s, each ended short: the replica its chunks were read from may be behind)", err, tries, what, readLag)
		}
		slog.Info("fleet: a read ended short; reading it again", "what", what, "try", tries, "err", err)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fetchOnce is one read of Fetch's.
func (o *Objects) fetchOnce(ctx context.Context, obs jetstream.ObjectStore, m Meta, destDir string) error {
	res, err := o.open(ctx, obs, m)
	if err != nil {
		return err
	}
	defer res.Close()
	if err := os.MkdirAll(destDir, 0o700); err != nil {
		return fmt.Errorf("fetch checkpoint of %s: %w", m.Key, err)
	}
	man, err := archive.ReadArchive(res, destDir, o.MaxBytes, nil)
	if err != nil {
		return fmt.Errorf("fetch checkpoint of %s: %w", m.Key, err)
	}
	// The digest is checked at the object's end: read to it.
	if _, err := io.Copy(io.Discard, res); err != nil {
		return fmt.Errorf("fetch checkpoint of %s: %w", m.Key, err)
	}
	return archive.SaveManifest(destDir, man)
}

// emptyDir removes what is in dir (not dir: its caller made or chose it).
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// readLag bounds how long a box may see an older object than another box
// stored: the store's stream allows direct reads, which any replica
// answers, one that has not applied the newest write yet included.
var readLag = 5 * time.Second

// open opens the object m describes, waiting out a replica behind.
func (o *Objects) open(ctx context.Context, obs jetstream.ObjectStore, m Meta) (jetstream.ObjectResult, error) {
	deadline := time.Now().Add(readLag)
	for {
		res, err := obs.Get(ctx, m.Object)
		var got Meta
		if err == nil {
			info, ierr := res.Info()
			if ierr != nil {
				res.Close()
				return nil, fmt.Errorf("fetch checkpoint of %s: %w", m.Key, ierr)
			}
			got = metaOf(m.Key, info)
			if got.TakenAt.Equal(m.TakenAt) && got.Box == m.Box {
				return res, nil
			}
			res.Close()
			if got.TakenAt.After(m.TakenAt) {
				return nil, fmt.Errorf("fetch checkpoint of %s: %w (now from %s, taken at %s)", m.Key, ErrReplaced, got.Box, got.TakenAt.Format(time.RFC3339Nano))
			}
		} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, fmt.Errorf("fetch checkpoint of %s: %w", m.Key, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("fetch checkpoint of %s taken at %s: %w", m.Key, m.TakenAt.Format(time.RFC3339Nano), ErrReplaced)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Delete removes key's stored checkpoint (none stored is no error).
func (o *Objects) Delete(ctx context.Context, k api.Key) error {
	obs, err := o.store()
	if err != nil {
		return err
	}
	if err := obs.Delete(ctx, objectName(k)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete stored checkpoint of %s: %w", k, err)
	}
	return nil
}

// Replicas is how many copies of each stored checkpoint the cluster keeps.
func (o *Objects) Replicas(ctx context.Context) (int, error) {
	obs, err := o.store()
	if err != nil {
		return 0, err
	}
	st, err := obs.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.Replicas(), nil
}
