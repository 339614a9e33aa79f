// Package breakerstore shares circuit-breaker state between payrouter
// instances through Redis: a gobreaker v2 SharedDataStore on go-redis v9
// (Store), and Breaker, which runs gobreaker's DistributedCircuitBreaker
// without holding the shared lock while a provider is being called.
//
// Why not DistributedCircuitBreaker.Execute alone: it holds the Redis lock
// for the whole request, so every call to a provider (seconds, under a
// timeout) would be serialized across all instances, and it reads the
// shared state before taking the lock, so concurrent updates are lost.
// Breaker instead takes the lock twice for a few milliseconds each: once to
// admit the call (open → refused) and once to record its outcome, each a
// read-modify-write under the lock. When Redis cannot be reached, Breaker
// falls back to a local breaker with the same settings: a Redis outage
// must never stop payments (fail open, per instance).
package breakerstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// ErrLocked is returned by Store.Lock when another holder keeps the lock
// past the wait.
var ErrLocked = errors.New("breakerstore: lock held elsewhere")

// Store is a gobreaker.SharedDataStore on Redis. Lock is SET NX PX with a
// random token per holder; Unlock deletes only its own token (Lua), so a
// holder whose lock expired cannot release someone else's. Lock is
// re-entrant for the holder that took it through this Store (see Breaker),
// which lets Breaker read the shared state under the lock that gobreaker
// then takes again.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	lockTTL time.Duration
	// LockWait bounds how long Lock waits for a lock held elsewhere.
	lockWait time.Duration
	dataTTL  time.Duration

	mu   sync.Mutex
	held map[string]*hold
}

type hold struct {
	token string
	depth int
}

// New returns a Store on rdb whose keys all start with prefix.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, lockTTL: 2 * time.Second, lockWait: time.Second,
		dataTTL: 7 * 24 * time.Hour, held: map[string]*hold{}}
}

// Open returns a Store on the Redis at url (redis://host:port/db); it
// does not connect yet (see Ping), so a Redis that is down at start-up
// leaves breakers local until it is back. Timeouts are short: a breaker
// that waits long for Redis would be worse than none. The only error is a
// malformed url.
func Open(url, prefix string) (*Store, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	opt.DialTimeout = 500 * time.Millisecond
	opt.ReadTimeout = 500 * time.Millisecond
	opt.WriteTimeout = 500 * time.Millisecond
	return New(redis.NewClient(opt), prefix), nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Close closes the Redis client.
func (s *Store) Close() error { return s.rdb.Close() }

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Lock takes the named lock, waiting up to a second while another holder
// has it; it returns ErrLocked after that, or Redis's error.
func (s *Store) Lock(name string) error {
	s.mu.Lock()
	if h := s.held[name]; h != nil {
		h.depth++
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	tok := newToken()
	ctx, cancel := context.WithTimeout(context.Background(), s.lockWait+time.Second)
	defer cancel()
	deadline := time.Now().Add(s.lockWait)
	wait := 2 * time.Millisecond
	for {
		ok, err := s.rdb.SetNX(ctx, s.prefix+name, tok, s.lockTTL).Result()
		if err != nil {
			return err
		}
		if ok {
			s.mu.Lock()
			s.held[name] = &hold{token: tok, depth: 1}
			s.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			return ErrLocked
		}
		time.Sleep(wait)
		wait = min(wait*2, 50*time.Millisecond)
	}
}

var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)

// Unlock releases a lock this Store holds (the outermost Unlock of a
// re-entrant hold). Releasing a lock not held is a no-op.
func (s *Store) Unlock(name string) error {
	s.mu.Lock()
	h := s.held[name]
	if h == nil {
		s.mu.Unlock()
		return nil
	}
	h.depth--
	if h.depth > 0 {
		s.mu.Unlock()
		return nil
	}
	delete(s.held, name)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return unlockScript.Run(ctx, s.rdb, []string{s.prefix + name}, h.token).Err()
}

// GetData returns the stored value, or nil with no error when there is none.
func (s *Store) GetData(name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := s.rdb.Get(ctx, s.prefix+name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// SetData stores the value (kept a week after its last write, so stale
// breakers of removed providers do not pile up).
func (s *Store) SetData(name string, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.rdb.Set(ctx, s.prefix+name, data, s.dataTTL).Err()
}

var _ gobreaker.SharedDataStore = (*Store)(nil)

// The key names gobreaker's DistributedCircuitBreaker uses (v2.4.0); the
// tests check that a state written by one Breaker is read by another.
func mutexKey(name string) string { return "gobreaker:mutex:" + name }
func stateKey(name string) string { return "gobreaker:state:" + name }

// errAdmit is what the admission step "runs": excluded from the counts, so
// admitting a call changes nothing but lets gobreaker say open / too many.
var errAdmit = errors.New("breakerstore: admitted")

// redisPause is how long a Breaker uses its local fallback after Redis
// failed, before trying Redis again.
const redisPause = 5 * time.Second

// Breaker is a circuit breaker whose state is shared through a Store. It
// has the Execute of gobreaker's breakers (what router.Guard needs) and a
// State that reads the shared state without locking.
type Breaker struct {
	name     string
	store    *Store
	maxProbe uint32
	settings gobreaker.Settings
	local    *gobreaker.CircuitBreaker[any]

	mu       sync.Mutex // serializes this instance's use of dcb
	dcb      *gobreaker.DistributedCircuitBreaker[any]
	redisBad time.Time // until then, use local
	probes   uint32    // this instance's half-open probes in flight
	// OnError, if set, sees every Redis failure (the breaker then runs
	// locally for a few seconds).
	onError func(error)
}

// NewBreaker returns a shared breaker named name with settings st (whose
// Name is replaced by name). onError may be nil. It never fails: when Redis
// cannot be reached now, the shared breaker is set up on first use.
func (s *Store) NewBreaker(name string, st gobreaker.Settings, onError func(error)) *Breaker {
	st.Name = name
	excluded := st.IsExcluded
	st.IsExcluded = func(err error) bool {
		return errors.Is(err, errAdmit) || (excluded != nil && excluded(err))
	}
	maxProbe := st.MaxRequests
	if maxProbe == 0 {
		maxProbe = 1
	}
	return &Breaker{name: name, store: s, maxProbe: maxProbe, settings: st, local: gobreaker.NewCircuitBreaker[any](st), onError: onError}
}

// init builds the distributed breaker on first use (it needs Redis).
func (b *Breaker) init() error {
	if b.dcb != nil {
		return nil
	}
	dcb, err := gobreaker.NewDistributedCircuitBreaker[any](b.store, b.settings)
	if err != nil {
		return err
	}
	b.dcb = dcb
	return nil
}

// shared runs f on the distributed breaker under the shared lock, or
// returns the Redis error (and pauses Redis use).
func (b *Breaker) shared(f func(*gobreaker.DistributedCircuitBreaker[any]) error) (err error) {
	if time.Now().Before(b.redisBad) {
		return errRedisPaused
	}
	defer func() {
		if err != nil && !isBreakerErr(err) {
			b.redisBad = time.Now().Add(redisPause)
			if b.onError != nil {
				b.onError(err)
			}
		}
	}()
	// Take the lock before gobreaker reads the state, so the
	// read-modify-write is atomic across instances; gobreaker's own Lock
	// re-enters it. Taking it first also keeps a Redis outage fast:
	// gobreaker retries a failing Lock for 5 s.
	if err := b.store.Lock(mutexKey(b.name)); err != nil {
		return err
	}
	defer func() {
		if e := b.store.Unlock(mutexKey(b.name)); err == nil && e != nil {
			err = e
		}
	}()
	if err := b.init(); err != nil {
		return err
	}
	return f(b.dcb)
}

var errRedisPaused = errors.New("breakerstore: redis paused after an error")

func isBreakerErr(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// Execute runs req if the shared breaker admits it and records its error
// (as classified by the settings' IsSuccessful / IsExcluded) in the shared
// counts. It returns gobreaker.ErrOpenState or ErrTooManyRequests without
// running req when the breaker refuses. When Redis cannot be reached the
// local breaker decides instead.
func (b *Breaker) Execute(req func() (any, error)) (any, error) {
	b.mu.Lock()
	probe := false
	err := b.shared(func(d *gobreaker.DistributedCircuitBreaker[any]) error {
		_, err := d.Execute(func() (any, error) { return nil, errAdmit })
		if errors.Is(err, errAdmit) {
			err = nil
		}
		if err == nil && d.CircuitBreaker.State() == gobreaker.StateHalfOpen {
			// Admission does not hold a half-open slot in the shared
			// counts; hold it here so this instance sends at most
			// MaxRequests probes at a time.
			if b.probes >= b.maxProbe {
				return gobreaker.ErrTooManyRequests
			}
			b.probes++
			probe = true
		}
		return err
	})
	b.mu.Unlock()
	switch {
	case isBreakerErr(err):
		return nil, err
	case err != nil:
		return b.local.Execute(req)
	}
	out, callErr := req()
	b.mu.Lock()
	if probe {
		b.probes--
	}
	rerr := b.shared(func(d *gobreaker.DistributedCircuitBreaker[any]) error {
		_, err := d.Execute(func() (any, error) { return nil, callErr })
		if errors.Is(err, callErr) || isBreakerErr(err) {
			// The call's own outcome, or the breaker opened meanwhile
			// (gobreaker drops a result from an older generation).
			return nil
		}
		return err
	})
	b.mu.Unlock()
	if rerr != nil {
		// Keep the local breaker informed while Redis is away.
		_, _ = b.local.Execute(func() (any, error) { return nil, callErr })
	}
	return out, callErr
}

// State reads the shared state without taking the lock (an open breaker
// past its open period reads as half-open, as gobreaker computes it). When
// Redis cannot be reached it is the local breaker's state.
func (b *Breaker) State() gobreaker.State {
	b.mu.Lock()
	paused := time.Now().Before(b.redisBad)
	b.mu.Unlock()
	if paused {
		return b.local.State()
	}
	data, err := b.store.GetData(stateKey(b.name))
	if err != nil {
		b.mu.Lock()
		b.redisBad = time.Now().Add(redisPause)
		b.mu.Unlock()
		if b.onError != nil {
			b.onError(err)
		}
		return b.local.State()
	}
	if len(data) == 0 {
		return gobreaker.StateClosed
	}
	var st gobreaker.SharedState
	if err := json.Unmarshal(data, &st); err != nil {
		return b.local.State()
	}
	if st.State == gobreaker.StateOpen && time.Now().After(st.Expiry) {
		return gobreaker.StateHalfOpen
	}
	return st.State
}
