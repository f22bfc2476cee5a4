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
}

// unknownCommand classifies a command missing from the table: it needs
// database:write, so that a classifier miss fails closed.
var unknownCommand = command{id: cmdData, scope: core.ScopeDatabaseWrite}

// Classify returns what the command named name (lower case) needs: its
// scope, or none when authentication alone suffices.
func Classify(name []byte) (scope core.Scope, none bool) {
	c := lookup(name)
	return c.scope, c.none
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
		"info", "time", "lastsave", "lolwut", "wait", "waitaof", "readonly", "readwrite",
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
	return m
}()
