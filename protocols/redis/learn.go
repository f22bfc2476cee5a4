package redis

import (
	"maps"

	"github.com/heliosdb/auth/core"
)

// mergeCommands merges the server's command table (COMMAND) with the
// gateway's own (commands), so that a command added in a newer Redis, or
// by a module, is classified by what the server says it is:
//
//   - A command of both tables keeps the gateway's row (its scope, its
//     administrative forms, the databases it reaches), except that a data
//     command the gateway files as a read but the server flags as a write
//     (the write flag or @write) needs database:write.
//   - A command the server alone knows is administrative when Redis files
//     it under @admin or @dangerous (refused for every token, as the
//     gateway's own administrative commands are; for a command with
//     subcommands, those forms only), else needs database:write when it
//     writes (the write flag, @write; @scripting, which also reaches every
//     logical database, as EVAL does), database:read when it only reads
//     (readonly, @read) or is a connection, transaction or Pub/Sub
//     command, and database:write otherwise. It is stateful: a server
//     connection that ran it is RESET before it is reused.
//
// A command neither table knows keeps the gateway's fail-closed default
// (unknownCommand: database:write; the server then says it does not
// exist).
func mergeCommands(server map[string]serverCommand) map[string]command {
	m := maps.Clone(commands)
	for name, sc := range server {
		if c, ok := m[name]; ok {
			if c.id == cmdData && !c.none && c.scope == core.ScopeDatabaseRead && sc.writes() {
				c.scope = core.ScopeDatabaseWrite
				m[name] = c
			}
			continue
		}
		m[name] = deriveCommand(sc)
	}
	return m
}

// writes reports whether the server says the command writes.
func (c serverCommand) writes() bool { return c.flags["write"] || c.categories["@write"] }

// admin reports whether the server files the command as administrative
// or dangerous.
func (c serverCommand) admin() bool { return c.categories["@admin"] || c.categories["@dangerous"] }

// scope is the scope a command the gateway does not know needs, by what
// the server says of it.
func (c serverCommand) scope() (core.Scope, crossKind) {
	switch {
	case c.categories["@scripting"]:
		return core.ScopeDatabaseWrite, crossAll
	case c.writes():
		return core.ScopeDatabaseWrite, crossNone
	case c.flags["readonly"] || c.categories["@read"] || c.categories["@connection"] ||
		c.categories["@transaction"] || c.categories["@pubsub"]:
		return core.ScopeDatabaseRead, crossNone
	}
	return core.ScopeDatabaseWrite, crossNone
}

// deriveCommand is the row of a command only the server knows.
func deriveCommand(sc serverCommand) command {
	c := command{id: cmdData, state: true}
	if len(sc.subs) == 0 {
		if sc.admin() {
			c.scope, c.admin = core.ScopeDatabaseWrite, &adminRule{all: true}
			return c
		}
		c.scope, c.cross = sc.scope()
		return c
	}
	// A container: the strictest scope of its forms; its administrative
	// forms refused.
	c.scope = core.ScopeDatabaseRead
	var adminSubs []string
	for _, sub := range sc.subs {
		name := sub.name
		for i := 0; i < len(name); i++ {
			if name[i] == '|' {
				name = name[i+1:]
				break
			}
		}
		if sub.admin() {
			adminSubs = append(adminSubs, name)
			continue
		}
		if s, k := sub.scope(); s == core.ScopeDatabaseWrite {
			c.scope = s
			if k != crossNone {
				c.cross = k
			}
		}
	}
	if sc.admin() || len(adminSubs) == len(sc.subs) {
		c.admin = &adminRule{all: true, named: true}
	} else if len(adminSubs) > 0 {
		c.admin = &adminRule{subs: adminSubs}
	}
	return c
}

// lookupIn returns the row for name (lower case) in table, or the
// fail-closed default.
func lookupIn(table map[string]command, name []byte) command {
	if c, ok := table[string(name)]; ok {
		return c
	}
	return unknownCommand
}
