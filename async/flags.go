package async

import (
	"flag"
	"os"
	"strconv"
	"time"
)

// RegisterFlags adds the queue's serve flags, with their defaults from the
// environment (as the provider's other flags). The store directory and the
// call timeout come from the provider's own state directory and write
// timeout.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.MaxInflight, "async-max-inflight", envInt("async_max_inflight", DefaultMaxInflight), "asynchronous calls of one function run at once (env async_max_inflight)")
	fs.IntVar(&c.MaxAttempts, "async-max-attempts", envInt("async_max_attempts", DefaultMaxAttempts), "tries of an asynchronous call answered 429, 502, 503 or 504 before its last answer is posted (env async_max_attempts)")
	fs.DurationVar(&c.RetryMax, "async-retry-max", envDuration("async_retry_max", DefaultRetryMax), "longest delay between two tries (they start at 1s and double) (env async_retry_max)")
	fs.Int64Var(&c.MaxBodyBytes, "async-max-body-bytes", int64(envInt("async_max_body_bytes", DefaultMaxBodyBytes)), "largest body of an asynchronous call (at most 60Mi) (env async_max_body_bytes)")
	fs.DurationVar(&c.AckWait, "async-ack-wait", envDuration("async_ack_wait", DefaultAckWait), "how long a call taken by a provider that died waits before another takes it (running calls renew it every third of it) (env async_ack_wait)")
	fs.Int64Var(&c.MaxQueueBytes, "async-max-queue-bytes", int64(envInt("async_max_queue_bytes", DefaultMaxQueueBytes)), "disk the queue may use; beyond it calls are refused with 503 (env async_max_queue_bytes)")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// ServerNeeds is what the queue's stream needs of a JetStream server it
// does not start itself (a fleet's): file storage to reserve for it, and
// the largest message.
func (c Config) ServerNeeds() (store int64, maxPayload int32) {
	c.defaults()
	return c.MaxQueueBytes, int32(c.MaxBodyBytes + 256<<10)
}
