package api

// Labels a function sets to choose its policies. The first six are
// OpenFaaS's own; the com.openfaas.criu.* ones are faas-criu's.
const (
	LabelScaleMin     = "com.openfaas.scale.min"
	LabelScaleMax     = "com.openfaas.scale.max"
	LabelScaleFactor  = "com.openfaas.scale.factor"
	LabelScaleZero    = "com.openfaas.scale.zero"
	LabelZeroDuration = "com.openfaas.scale.zero-duration"
	LabelScaleTarget  = "com.openfaas.scale.target"
	// LabelStrategy: checkpoint, pause, pause-then-checkpoint or remove.
	LabelStrategy = "com.openfaas.criu.strategy"
	// LabelPauseAfter: idle time before the pause tier (pause-then-checkpoint).
	LabelPauseAfter = "com.openfaas.criu.pause-after"
	// LabelHibernateInflight: "true" lets memory pressure hibernate the
	// function while it has requests in flight (they complete after restore).
	LabelHibernateInflight = "com.openfaas.criu.hibernate-inflight"
	// LabelBackupInterval: how often the running function is backed up (a
	// Go duration; "0" turns a global default off).
	LabelBackupInterval = "com.openfaas.criu.backup-interval"
	// LabelBackupsKeep: how many backups of each replica are kept.
	LabelBackupsKeep = "com.openfaas.criu.backups-keep"
	// LabelDeepAfter: how long a function stays hibernated with its network
	// sandbox kept before the sandbox is stopped too (the deep tier). "0" or
	// "never": never.
	LabelDeepAfter = "com.openfaas.criu.deep-after"
	// LabelInPlace: "true" runs the function's containers under
	// faas-criu-init and hibernates the function in place (its processes
	// dumped, its container kept up); "false" (the default) does not.
	LabelInPlace = "com.openfaas.criu.in-place"
)

// InPlace reads LabelInPlace from a function's labels: exactly "true" or
// "false" (or absent: false). Anything else is an error naming the label,
// for a deploy to refuse: a typo must not leave a function hibernating
// another way than its owner asked.
func InPlace(labels map[string]string) (bool, error) {
	v, ok := labels[LabelInPlace]
	switch {
	case !ok || v == "false":
		return false, nil
	case v == "true":
		return true, nil
	}
	return false, Errorf(ErrInvalid, "label %s=%q: want true or false", LabelInPlace, v)
}

// AnnotationPrefix starts every annotation the provider adds to a
// function's status. They are output only: a deployment's annotations with
// this prefix are dropped.
const AnnotationPrefix = "com.openfaas.criu."

// Annotations the provider adds to a function's status to describe its
// sleep. They are documented in the README.
const (
	AnnotationState           = "com.openfaas.criu.state"                // awake, paused, hibernated
	AnnotationTier            = "com.openfaas.criu.tier"                 // awake, paused, hibernated, deep
	AnnotationSleptAt         = "com.openfaas.criu.slept-at"             // RFC 3339
	AnnotationSleptReplicas   = "com.openfaas.criu.slept-replicas"       // replicas that went to sleep
	AnnotationCheckpointBytes = "com.openfaas.criu.checkpoint-bytes"     // total size on disk
	AnnotationCheckpointAt    = "com.openfaas.criu.checkpoint-at"        // newest checkpoint, RFC 3339
	AnnotationFreezingMs      = "com.openfaas.criu.freezing-ms"          // CRIU's freezing time, newest dump
	AnnotationPagesWritten    = "com.openfaas.criu.pages-written"        // CRIU's pages written, all dumps
	AnnotationLastWake        = "com.openfaas.criu.last-wake"            // "restore 212ms at <time>"
	AnnotationStateLost       = "com.openfaas.criu.state-lost"           // why a replica's memory state was lost (until the next deploy)
	AnnotationStateLostAt     = "com.openfaas.criu.state-lost-at"        // when, RFC 3339
	AnnotationFallback        = "com.openfaas.criu.fallback"             // why it paused instead of hibernating
	AnnotationInflight        = "com.openfaas.criu.inflight"             // requests in flight now
	AnnotationBackups         = "com.openfaas.criu.backups"              // backups kept
	AnnotationLastBackup      = "com.openfaas.criu.last-backup"          // newest backup, RFC 3339
	AnnotationFromBackup      = "com.openfaas.criu.restored-from-backup" // "<backup> taken at T, restored at U"
	// AnnotationHibernation says how a hibernated function keeps its state:
	// HibernationInPlace or HibernationCheckpoint (absent while it is not
	// hibernated).
	AnnotationHibernation = "com.openfaas.criu.hibernation"
)

// Values of AnnotationHibernation.
const (
	// HibernationInPlace: its processes were dumped in place; its containers
	// stay up under faas-criu-init (stopped too in the deep tier).
	HibernationInPlace = "in-place"
	// HibernationCheckpoint: its containers were checkpointed by the
	// engine and stopped.
	HibernationCheckpoint = "checkpoint"
)
