package main

import "errors"

// cleanups run in reverse order of registration, every one of them even
// when some fail.
type cleanups []func() error

func (c *cleanups) push(f func() error) { *c = append(*c, f) }

func (c *cleanups) run() error {
	var errs []error
	for i := len(*c) - 1; i >= 0; i-- {
		if err := (*c)[i](); err != nil {
			errs = append(errs, err)
		}
	}
	*c = nil
	return errors.Join(errs...)
}
