package redis

import "github.com/heliosdb/auth/core"

// cmdID names the commands the session answers by itself.
type cmdID uint8

const (
	cmdData    cmdID = iota // a data command: scope check, then the upstream
	cmdAuth                 // AUTH [user] token
	cmdHello                // HELLO [proto [AUTH user token] [SETNAME name]]
	cmdPing                 // PING [message]
	cmdEcho                 // ECHO message
	cmdClient               // CLIENT SETINFO/SETNAME/GETNAME/ID/INFO/…
	cmdSelect               // SELECT db
	cmdACL                  // ACL WHOAMI (other subcommands need an upstream)
	cmdCommand              // COMMAND [COUNT|DOCS|INFO|…]
	cmdQuit                 // QUIT
	cmdReset                // RESET
	cmdWhoami               // HELIOS.WHOAMI: the token's identity
	cmdInfo                 // INFO [section …]: the gateway's own sections
)

// command is one row of the classification table.
type command struct {
	id cmdID
	// scope is what the token must hold; none means authentication alone.
	scope core.Scope
	none  bool
	// cross says which other logical databases the command names or
	// reaches besides the selected one (crossNone: none).
	cross crossKind
	// admin marks an administrative command (or one with administrative
	// subcommands), refused for every token whatever its scopes; nil for
	// the others.
	admin *adminRule
	// state marks a command that changes the connection's state beyond its
	// reply (SELECT, MULTI, WATCH, CLIENT …, and every command the gateway
	// learned from the server only): in proxy mode, a server connection
	// that ran one is RESET before it is handed to another client.
	state bool
	// pubsub marks SUBSCRIBE and its kin, whose confirmations the server
	// sends as Pub/Sub messages (one per channel), not as one reply.
	pubsub bool
}

// unknownCommand classifies a command missing from the table: it needs
// database:write, so that a classifier miss fails closed.
var unknownCommand = command{id: cmdData, scope: core.ScopeDatabaseWrite}

// adminRule says which forms of a command are administrative.
type adminRule struct {
	// all: every form of the command.
	all bool
	// named: an all command whose refusal names its subcommand
	// ('config|set'), as Redis names the subcommands of its command table.
	named bool
	// subs are subcommands (lower case): the administrative ones, or, with
	// allow, the only ones that are not.
	subs  []string
	allow bool
}

// refuses reports whether args (args[0] the command's name) is an
// administrative form. A command whose rule lists subcommands and that has
// none is not: it gets the usual reply (an argument-count error upstream).
// It allocates nothing.
func (r *adminRule) refuses(args [][]byte) bool {
	if r.all {
		return true
	}
	if len(args) < 2 {
		return false
	}
	for _, sub := range r.subs {
		if equalFold(args[1], sub) {
			return !r.allow
		}
	}
	return r.allow
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// adminCommands are the administrative commands: those that change the
// server's users (ACL), configuration, persistence, modules, replication
// or cluster topology, stop or stall the server or other clients, or show
// other clients' commands and connections — the upstream Redis server is
// the operator's, shared by every account, and HeliosDB authenticates with
// tokens, not with the server's users. They are refused for every token,
// "*" included, after authentication and before the scope check, with
// -NOPERM. The choices where Redis has read-only forms:
//
//   - ACL: WHOAMI (answered by the gateway: "default"), CAT and HELP stay;
//     LIST, USERS, GETUSER, LOG and DRYRUN would show the upstream's users
//     and their failures, the rest change them.
//   - CONFIG: every form; GET would show requirepass and masterauth (the
//     upstream's own credentials) and its file system layout.
//   - CLIENT: KILL, PAUSE, UNPAUSE, UNBLOCK act on other connections,
//     NO-EVICT exempts this one from the server's memory protection, LIST
//     shows every connection; SETNAME, SETINFO, GETNAME, ID, INFO,
//     NO-TOUCH and the rest answer as before.
//   - SCRIPT FLUSH and FUNCTION FLUSH, FUNCTION RESTORE drop or replace
//     every client's scripts and libraries; SCRIPT LOAD, FUNCTION LOAD and
//     FUNCTION DELETE (one named library, which LOAD … REPLACE could
//     overwrite anyway), SCRIPT KILL and FUNCTION KILL (which stop only a
//     script that has written nothing) keep needing schema:write.
//   - LATENCY RESET and SLOWLOG RESET erase the operator's records, and
//     SLOWLOG GET shows other clients' commands with their arguments; the
//     other LATENCY and SLOWLOG forms are server statistics, like INFO:
//     database:read.
//   - MEMORY PURGE; MEMORY USAGE, STATS, DOCTOR stay database:read.
//   - CLUSTER: the read forms (INFO, NODES, SLOTS, SHARDS, MYID, KEYSLOT,
//     …) stay database:read; every other form changes the topology.
//
// SWAPDB, FLUSHALL and MIGRATE are data commands checked for the
// databases they reach (crossCommands).
var adminCommands = map[string]*adminRule{
	"acl":    {allow: true, subs: []string{"whoami", "cat", "help"}},
	"config": {all: true, named: true},
	"client": {subs: []string{"kill", "pause", "unpause", "unblock", "no-evict", "list"}},
	"cluster": {allow: true, subs: []string{"info", "nodes", "slots", "shards", "myid", "myshardid", "keyslot",
		"countkeysinslot", "getkeysinslot", "links", "replicas", "slaves", "count-failure-reports", "help"}},
	"script":       {subs: []string{"flush"}},
	"function":     {subs: []string{"flush", "restore"}},
	"latency":      {subs: []string{"reset"}},
	"slowlog":      {subs: []string{"reset", "get"}},
	"memory":       {subs: []string{"purge"}},
	"shutdown":     {all: true},
	"debug":        {all: true},
	"monitor":      {all: true},
	"save":         {all: true},
	"bgsave":       {all: true},
	"bgrewriteaof": {all: true},
	"replicaof":    {all: true},
	"slaveof":      {all: true},
	"sync":         {all: true},
	"psync":        {all: true},
	"replconf":     {all: true},
	"failover":     {all: true},
	"module":       {all: true, named: true},
	"sentinel":     {all: true, named: true},
	"pfdebug":      {all: true},
	"pfselftest":   {all: true},
}

// lookup returns the table row for name (lower case). The map lookup with a
// converted []byte key does not allocate.
func lookup(name []byte) command {
	if c, ok := commands[string(name)]; ok {
		return c
	}
	return unknownCommand
}

// Command name lists by the scope they need.
var (
	// readCommands read data or server state: database:read.
	readCommands = []string{
		"get", "mget", "strlen", "getrange", "substr", "exists", "type", "ttl", "pttl",
		"expiretime", "pexpiretime", "keys", "scan", "randomkey", "dbsize", "lcs",
		"hget", "hmget", "hgetall", "hkeys", "hvals", "hlen", "hexists", "hstrlen", "hscan", "hrandfield",
		"httl", "hpttl", "hexpiretime", "hpexpiretime",
		"lrange", "lindex", "llen", "lpos",
		"smembers", "sismember", "smismember", "scard", "srandmember", "sscan", "sinter", "sunion", "sdiff", "sintercard",
		"zrange", "zrangebyscore", "zrevrange", "zrevrangebyscore", "zrangebylex", "zrevrangebylex",
		"zscore", "zmscore", "zrank", "zrevrank", "zcard", "zcount", "zlexcount", "zscan", "zrandmember",
		"zinter", "zunion", "zdiff", "zintercard",
		"xrange", "xrevrange", "xlen", "xread", "xinfo", "xpending",
		"geopos", "geodist", "geohash", "geosearch", "georadius_ro", "georadiusbymember_ro",
		"pfcount", "bitcount", "bitpos", "getbit", "bitfield_ro", "dump", "object", "memory", "touch",
		"sort_ro", "eval_ro", "evalsha_ro", "fcall_ro",
		"time", "lastsave", "lolwut", "wait", "waitaof", "readonly", "readwrite",
		"latency", "slowlog", "cluster", // their administrative forms: adminCommands
		"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "pubsub",
		"multi", "exec", "discard", "watch", "unwatch", "tracking",
		"json.get", "json.mget", "json.type", "json.strlen", "json.arrlen", "json.arrindex", "json.objkeys",
		"json.objlen", "json.resp", "ft.search", "ft.aggregate", "ft.info", "ft._list", "ft.explain",
		"ts.get", "ts.mget", "ts.range", "ts.revrange", "ts.mrange", "ts.mrevrange", "ts.info", "ts.queryindex",
		"bf.exists", "bf.mexists", "bf.info", "cf.exists", "cf.count", "cf.info",
		"vsim", "vcard", "vdim", "vemb", "vinfo", "vgetattr", "vlinks", "vrandmember",
	}
	// writeCommands change data: database:write.
	writeCommands = []string{
		"set", "setnx", "setex", "psetex", "mset", "msetnx", "getset", "getdel", "getex", "append",
		"incr", "decr", "incrby", "decrby", "incrbyfloat", "setrange", "del", "unlink",
		"expire", "pexpire", "expireat", "pexpireat", "persist", "rename", "renamenx", "move", "copy", "restore",
		"hset", "hsetnx", "hmset", "hdel", "hincrby", "hincrbyfloat", "hexpire", "hpexpire", "hexpireat",
		"hpexpireat", "hpersist", "hgetdel", "hgetex", "hsetex",
		"lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop", "linsert", "lset", "lrem", "ltrim",
		"rpoplpush", "lmove", "blpop", "brpop", "brpoplpush", "blmove", "lmpop", "blmpop",
		"sadd", "srem", "spop", "smove", "sinterstore", "sunionstore", "sdiffstore",
		"zadd", "zincrby", "zrem", "zremrangebyrank", "zremrangebyscore", "zremrangebylex",
		"zpopmin", "zpopmax", "bzpopmin", "bzpopmax", "zmpop", "bzmpop",
		"zunionstore", "zinterstore", "zdiffstore", "zrangestore",
		"xadd", "xdel", "xtrim", "xgroup", "xreadgroup", "xack", "xclaim", "xautoclaim", "xsetid",
		"setbit", "bitop", "bitfield", "pfadd", "pfmerge",
		"geoadd", "georadius", "georadiusbymember", "geosearchstore",
		"sort", "eval", "evalsha", "fcall", "publish", "spublish", "swapdb", "migrate",
		"json.set", "json.del", "json.forget", "json.arrappend", "json.arrinsert", "json.arrpop",
		"json.arrtrim", "json.clear", "json.merge", "json.mset", "json.numincrby", "json.strappend", "json.toggle",
		"ts.add", "ts.madd", "ts.incrby", "ts.decrby", "ts.del", "ts.alter",
		"bf.add", "bf.madd", "bf.insert", "cf.add", "cf.addnx", "cf.del", "cf.insert",
		"vadd", "vrem", "vsetattr",
	}
	// deleteCommands drop a whole database: database:delete.
	deleteCommands = []string{"flushdb", "flushall"}
	// schemaCommands change indexes, scripts and functions: schema:write.
	schemaCommands = []string{
		"ft.create", "ft.alter", "ft.dropindex", "ft.aliasadd", "ft.aliasdel", "ft.aliasupdate",
		"ft.synupdate", "ts.create", "ts.createrule", "ts.deleterule", "bf.reserve", "cf.reserve",
		"script", "function",
	}
)

// statefulCommands change the connection's state beyond their reply
// (command.state).
var statefulCommands = []string{"select", "hello", "client", "multi", "exec", "discard", "watch", "unwatch",
	"readonly", "readwrite", "reset"}

// pubsubCommands are answered with one Pub/Sub confirmation per channel
// (command.pubsub).
var pubsubCommands = []string{"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"}

// commands is the classification table, keyed by lower-case command name.
var commands = func() map[string]command {
	m := map[string]command{
		"auth":          {id: cmdAuth, none: true},
		"hello":         {id: cmdHello, none: true},
		"ping":          {id: cmdPing, none: true},
		"echo":          {id: cmdEcho, none: true},
		"client":        {id: cmdClient, none: true},
		"select":        {id: cmdSelect, scope: core.ScopeDatabaseRead},
		"acl":           {id: cmdACL, none: true},
		"command":       {id: cmdCommand, none: true},
		"quit":          {id: cmdQuit, none: true},
		"reset":         {id: cmdReset, none: true},
		"helios.whoami": {id: cmdWhoami, none: true},
		// INFO describes this gateway (its version, no data), which
		// clients read on connect (ioredis's ready check): no scope.
		"info": {id: cmdInfo, none: true},
	}
	add := func(names []string, s core.Scope) {
		for _, n := range names {
			m[n] = command{id: cmdData, scope: s}
		}
	}
	add(readCommands, core.ScopeDatabaseRead)
	add(writeCommands, core.ScopeDatabaseWrite)
	add(deleteCommands, core.ScopeDatabaseDelete)
	add(schemaCommands, core.ScopeSchemaWrite)
	for n, k := range crossCommands {
		c := m[n]
		c.cross = k
		m[n] = c
	}
	for _, n := range statefulCommands {
		c := m[n]
		c.state = true
		m[n] = c
	}
	for _, n := range pubsubCommands {
		c := m[n]
		c.state, c.pubsub = true, true
		m[n] = c
	}
	for n, r := range adminCommands {
		c, ok := m[n]
		if !ok {
			c = unknownCommand
		}
		c.admin = r
		m[n] = c
	}
	return m
}()
