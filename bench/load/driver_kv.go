package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// mongoDriver drives MongoDB with mongo-driver v2: one client per
// session with a pool of one connection, authenticated (SASL PLAIN with
// the token on the gateway) by its first command.
type mongoDriver struct {
	uri func(token string) string
	db  string
	tls *tls.Config // the gateway's, with --tls
}

func newMongoDriver(c *Config, e Endpoint) (driver, error) {
	d := &mongoDriver{db: c.Database}
	if e.Gateway {
		d.tls = c.tlsFor(e.Addr)
		d.uri = func(tok string) string {
			return "mongodb://default:" + url.QueryEscape(tok) + "@" + e.Addr + "/" + c.Database + "?authMechanism=PLAIN&directConnection=true"
		}
		return d, nil
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return nil, fmt.Errorf("compare %s: %v", e.Name, err)
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		d.db = db
	}
	d.uri = func(string) string { return e.URL }
	return d, nil
}

type mongoSession struct {
	c    *mongo.Client
	coll *mongo.Collection
	db   *mongo.Database
}

// connect makes a client; its first command connects and authenticates.
func (d *mongoDriver) connect(token string) (*mongoSession, error) {
	o := options.Client().ApplyURI(d.uri(token)).SetMaxPoolSize(1).SetServerSelectionTimeout(dialTimeout).
		SetConnectTimeout(dialTimeout).SetRetryReads(false).SetRetryWrites(false)
	if d.tls != nil {
		o.SetTLSConfig(d.tls)
	}
	c, err := mongo.Connect(o)
	if err != nil {
		return nil, err
	}
	db := c.Database(d.db)
	return &mongoSession{c: c, db: db, coll: db.Collection(table)}, nil
}

func (d *mongoDriver) open(ctx context.Context, token string) (session, error) {
	s, err := d.connect(token)
	if err != nil {
		return nil, err
	}
	if err := s.ping(ctx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// connectOnce: a new client, ping (which connects and authenticates),
// disconnect.
func (d *mongoDriver) connectOnce(ctx context.Context, token string) error {
	s, err := d.connect(token)
	if err != nil {
		return err
	}
	defer s.close()
	return s.ping(ctx)
}

func (d *mongoDriver) prepare(ctx context.Context, token string, keys int) (string, error) {
	s, err := d.connect(token)
	if err != nil {
		return "", err
	}
	defer s.close()
	docs := make([]any, 0, keys)
	for k := 1; k <= keys; k++ {
		docs = append(docs, bson.D{{Key: "_id", Value: k}, {Key: "v", Value: "value-" + strconv.Itoa(k)}})
	}
	_, err = s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 { // duplicate key: prepared before
				return "", err
			}
		}
		err = nil
	}
	if err != nil {
		return "", err
	}
	var info struct {
		Version string `bson:"version"`
	}
	err = s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info)
	return "MongoDB wire " + info.Version, err
}

func (s *mongoSession) ping(ctx context.Context) error {
	return s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

func (s *mongoSession) read(ctx context.Context, key int) error {
	var doc struct {
		V string `bson:"v"`
	}
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("%w: %s _id=%d", errMissing, table, key)
	}
	return err
}

func (s *mongoSession) write(ctx context.Context, key int, val string) error {
	_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: val}}}})
	return err
}

func (s *mongoSession) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.c.Disconnect(ctx)
}

// redisDriver drives Redis with go-redis v9 (RESP3, HELLO 3 AUTH with the
// token on the gateway), one connection per session.
type redisDriver struct {
	opts *redis.Options
	gw   bool
}

// quietRedis keeps go-redis from logging to stderr (a connection the
// gateway closed on revocation): the run counts errors itself.
var quietRedis sync.Once

type nopRedisLogger struct{}

// Printf drops the message.
func (nopRedisLogger) Printf(context.Context, string, ...any) {}

func newRedisDriver(c *Config, e Endpoint) (driver, error) {
	quietRedis.Do(func() { redis.SetLogger(nopRedisLogger{}) })
	o := &redis.Options{Addr: e.Addr, Protocol: 3, TLSConfig: c.tlsFor(e.Addr)}
	if !e.Gateway {
		var err error
		if o, err = redis.ParseURL(e.URL); err != nil {
			return nil, fmt.Errorf("compare %s: %v", e.Name, err)
		}
	}
	o.PoolSize, o.MinIdleConns, o.MaxRetries = 1, 0, -1
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = dialTimeout, 30*time.Second, 30*time.Second
	return &redisDriver{opts: o, gw: e.Gateway}, nil
}

type redisSession struct{ c *redis.Client }

func (d *redisDriver) open(ctx context.Context, token string) (session, error) {
	o := *d.opts
	if d.gw {
		o.Username, o.Password = "", token
	}
	c := redis.NewClient(&o)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return &redisSession{c: c}, nil
}

func (d *redisDriver) connectOnce(ctx context.Context, token string) error {
	return connectOnce(ctx, d, token)
}

func redisKey(k int) string { return table + ":" + strconv.Itoa(k) }

func (d *redisDriver) prepare(ctx context.Context, token string, keys int) (string, error) {
	s, err := d.open(ctx, token)
	if err != nil {
		return "", err
	}
	defer s.close()
	c := s.(*redisSession).c
	for lo := 1; lo <= keys; lo += 500 {
		var kv []any
		for k := lo; k < lo+500 && k <= keys; k++ {
			kv = append(kv, redisKey(k), "value-"+strconv.Itoa(k))
		}
		if err := c.MSet(ctx, kv...).Err(); err != nil {
			return "", err
		}
	}
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "Redis", nil // INFO may be refused: the version is only for the report
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			return "Redis " + v, nil
		}
	}
	return "Redis", nil
}

func (s *redisSession) ping(ctx context.Context) error { return s.c.Ping(ctx).Err() }

func (s *redisSession) read(ctx context.Context, key int) error {
	err := s.c.Get(ctx, redisKey(key)).Err()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%w: %s", errMissing, redisKey(key))
	}
	return err
}

func (s *redisSession) write(ctx context.Context, key int, val string) error {
	return s.c.Set(ctx, redisKey(key), val, 0).Err()
}

func (s *redisSession) close() { _ = s.c.Close() }
