/* broker_redis_lua: the Lua scripts the Redis broker runs (EVALSHA), each
 * one atomic step of a room's order. Text only: the key layout and the
 * publication format they share with broker_redis.c are described at the
 * top of that file. Never edited without the C side that reads replies. */
#include "broker_redis_lua.h"

/* Numbers a message, keeps it, publishes it; creates the epoch when missing;
 * a message's room (ARGV[7]) goes into the registry KEYS[4] (as in every
 * script that gives a room members or a seq). Returns {seq, epoch}: a
 * publisher may wait for its number. */
const char BROKER_REDIS_PUBLISH_LUA[] =
    "local epoch = redis.call('GET', KEYS[2])\n"
    "if not epoch then\n"
    "  epoch = ARGV[6]\n"
    "  redis.call('SET', KEYS[2], epoch)\n"
    "  redis.call('DEL', KEYS[1], KEYS[3])\n"
    "end\n"
    "local seq = 0\n"
    "if ARGV[2] == 'M' then\n"
    "  seq = redis.call('INCR', KEYS[1])\n"
    "  redis.call('ZADD', KEYS[4], 0, ARGV[7])\n"
    "  if tonumber(ARGV[4]) > 0 then\n"
    "    redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[4], seq .. '-0', 'd', ARGV[3])\n"
    "  end\n"
    "end\n"
    "local ttl = tonumber(ARGV[5])\n"
    "if ttl > 0 then\n"
    "  redis.call('EXPIRE', KEYS[1], ttl)\n"
    "  redis.call('EXPIRE', KEYS[2], ttl)\n"
    "  redis.call('EXPIRE', KEYS[3], ttl)\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[1], ARGV[2] .. seq .. ':' .. epoch .. ':' .. ARGV[3])\n"
    "return {seq, epoch}\n";

/* One roster change of a member of node ARGV[3], atomically: a join takes
 * the wanted nick, or a free one with the wanted nick's next suffix (as the
 * hub makes them), or guest-N; a rename is refused (0) when the nick is
 * taken; a leave only removes an entry of the same node (else 0). Each
 * change is numbered (pseq) and published on the room's channel; a join or
 * rename puts the room (ARGV[10]) in the registry KEYS[8]. */
const char BROKER_REDIS_PRESENCE_LUA[] =
    "local epoch = redis.call('GET', KEYS[2])\n"
    "if not epoch then\n"
    "  epoch = ARGV[8]\n"
    "  redis.call('SET', KEYS[2], epoch)\n"
    "  redis.call('DEL', KEYS[1], KEYS[3])\n"
    "  if tonumber(ARGV[9]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[9]) end\n"
    "end\n"
    "local us = '\\31'\n"
    "local function publish(nick, old)\n"
    "  local ps = redis.call('INCR', KEYS[6])\n"
    "  redis.call('PUBLISH', ARGV[1], ARGV[2] .. ps .. ':' .. epoch .. ':' .. ARGV[3] .. us .. ARGV[4] .. us ..\n"
    "    nick .. us .. old .. us .. ARGV[11] .. us .. ARGV[12] .. us .. ARGV[13] .. us .. ARGV[14] .. us .. ARGV[15])\n"
    "end\n"
    "local function suffixed(want, k)\n"
    "  local d = tostring(k)\n"
    "  local base = #want\n"
    "  if base + #d > 32 then\n"
    "    base = 32 - #d\n"
    "    while base > 0 and bit.band(string.byte(want, base + 1), 192) == 128 do base = base - 1 end\n"
    "  end\n"
    "  return string.sub(want, 1, base) .. d\n"
    "end\n"
    "local kind = ARGV[2]\n"
    "if kind == 'J' then\n"
    "  local want, nick = ARGV[5], ARGV[5]\n"
    "  if ARGV[7] == '1' then\n"
    "    repeat nick = 'guest-' .. redis.call('HINCRBY', KEYS[5], '', 1)\n"
    "    until redis.call('HEXISTS', KEYS[4], nick) == 0\n"
    "  else\n"
    "    while redis.call('HEXISTS', KEYS[4], nick) == 1 do\n"
    "      nick = suffixed(want, redis.call('HINCRBY', KEYS[5], want, 1) + 1)\n"
    "    end\n"
    "  end\n"
    "  redis.call('HSET', KEYS[4], nick, ARGV[3] .. us .. ARGV[4] .. us .. ARGV[6] .. us .. ARGV[12])\n"
    "  redis.call('ZADD', KEYS[8], 0, ARGV[10])\n"
    "  redis.call('HSET', KEYS[7], ARGV[10] .. us .. nick, 1)\n"
    "  publish(nick, ARGV[6])\n"
    "  return nick\n"
    "end\n"
    "if kind == 'N' then\n"
    "  if redis.call('HEXISTS', KEYS[4], ARGV[5]) == 1 then return 0 end\n"
    "  local v = redis.call('HGET', KEYS[4], ARGV[6]) or (ARGV[3] .. us .. ARGV[4] .. us .. ARGV[5] .. us .. ARGV[12])\n"
    "  redis.call('HDEL', KEYS[4], ARGV[6])\n"
    "  redis.call('HSET', KEYS[4], ARGV[5], v)\n"
    "  redis.call('ZADD', KEYS[8], 0, ARGV[10])\n"
    "  redis.call('HDEL', KEYS[7], ARGV[10] .. us .. ARGV[6])\n"
    "  redis.call('HSET', KEYS[7], ARGV[10] .. us .. ARGV[5], 1)\n"
    "  publish(ARGV[5], ARGV[6])\n"
    "  return 1\n"
    "end\n"
    "local v = redis.call('HGET', KEYS[4], ARGV[5])\n"
    "if not v or string.sub(v, 1, #ARGV[3] + 1) ~= ARGV[3] .. us then return 0 end\n"
    "redis.call('HDEL', KEYS[4], ARGV[5])\n"
    "redis.call('HDEL', KEYS[7], ARGV[10] .. us .. ARGV[5])\n"
    "publish(ARGV[5], '')\n"
    "return 1\n";

/* A node's heartbeat (ARGV[1], in the zset KEYS[1], by Redis's clock), and
 * the expiry of nodes silent for ARGV[2] ms: each of their members leaves
 * its room (a numbered leave, WHY "timeout"), at most ARGV[4] per call. A
 * node that was itself silent that long (Redis was away from it, or from
 * all) expires nobody: the others get a whole timeout to be heard again.
 * Returns {1 if this node was registered, members removed}. The rooms'
 * keys are derived here, not passed: this needs a single Redis, not a
 * Redis Cluster (see docs/design.md). */
const char BROKER_REDIS_NODE_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local was = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
    "local dead = {}\n"
    "if was and now - tonumber(was) < tonumber(ARGV[2]) then\n"
    "  dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, 16)\n"
    "end\n"
    "local budget, gone, us = tonumber(ARGV[4]), 0, '\\31'\n"
    "for _, d in ipairs(dead) do\n"
    "  local nk = ARGV[3] .. ':node:' .. d\n"
    "  for _, f in ipairs(redis.call('HKEYS', nk)) do\n"
    "    if budget <= 0 then break end\n"
    "    budget = budget - 1\n"
    "    local room, nick = string.match(f, '^(.-)\\31(.*)$')\n"
    "    if room then\n"
    "      local base = ARGV[3] .. ':{' .. room .. '}:'\n"
    "      local v = redis.call('HGET', base .. 'members', nick)\n"
    "      if v and string.sub(v, 1, #d + 1) == d .. us then\n"
    "        redis.call('HDEL', base .. 'members', nick)\n"
    "        gone = gone + 1\n"
    "        local epoch = redis.call('GET', base .. 'epoch')\n"
    "        if epoch then\n"
    "          local ps = redis.call('INCR', base .. 'pseq')\n"
    "          local user = string.match(v, '^[^\\31]*\\31[^\\31]*\\31[^\\31]*\\31(.*)$') or ''\n"
    "          redis.call('PUBLISH', ARGV[3] .. ':ch:' .. room, 'L' .. ps .. ':' .. epoch .. ':' .. d .. us ..\n"
    "            '0' .. us .. nick .. us .. us .. 'timeout' .. us .. user .. us .. us .. us)\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    redis.call('HDEL', nk, f)\n"
    "  end\n"
    "  if redis.call('HLEN', nk) == 0 then redis.call('ZREM', KEYS[1], d) end\n"
    "end\n"
    "return {was and 1 or 0, gone}\n";

/* A room's state: {last seq, epoch, newest ARGV[1] stream entries (newest
 * first), last roster change number, roster, roster size}. The roster is
 * whole up to ARGV[6] entries (0: always); past that, ARGV[6] entries at
 * random and every entry of this node (its P:node:N hash, KEYS[6], fields
 * ARGV[7] US NICK), so a big room costs a sync what a welcome can list. A
 * counter behind what this node delivered in the same epoch (a Redis that
 * lost its last writes) is moved forward, so numbers are never given twice
 * (its TTL kept, and the room, ARGV[7], put back in the registry KEYS[7]). */
const char BROKER_REDIS_SYNC_LUA[] =
    "local epoch = redis.call('GET', KEYS[2])\n"
    "if not epoch then\n"
    "  epoch = ARGV[2]\n"
    "  redis.call('SET', KEYS[2], epoch)\n"
    "  redis.call('DEL', KEYS[1], KEYS[3])\n"
    "  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end\n"
    "end\n"
    "local seq = redis.call('GET', KEYS[1]) or '0'\n"
    "if epoch == ARGV[4] and tonumber(ARGV[5]) > tonumber(seq) then\n"
    "  seq = ARGV[5]\n"
    "  redis.call('SET', KEYS[1], seq, 'KEEPTTL')\n"
    "  redis.call('ZADD', KEYS[7], 0, ARGV[7])\n"
    "end\n"
    "local entries = {}\n"
    "if tonumber(ARGV[1]) > 0 then\n"
    "  entries = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', ARGV[1])\n"
    "end\n"
    "local total = redis.call('HLEN', KEYS[4])\n"
    "local roster\n"
    "if tonumber(ARGV[6]) == 0 or total <= tonumber(ARGV[6]) then\n"
    "  roster = redis.call('HGETALL', KEYS[4])\n"
    "else\n"
    "  roster = redis.call('HRANDFIELD', KEYS[4], ARGV[6], 'WITHVALUES')\n"
    "  local cursor = '0'\n"
    "  repeat\n"
    "    local r = redis.call('HSCAN', KEYS[6], cursor, 'MATCH', ARGV[7] .. '\\31*', 'COUNT', 1000)\n"
    "    cursor = r[1]\n"
    "    for i = 1, #r[2], 2 do\n"
    "      local nick = string.sub(r[2][i], #ARGV[7] + 2)\n"
    "      local v = redis.call('HGET', KEYS[4], nick)\n"
    "      if v then\n"
    "        table.insert(roster, nick)\n"
    "        table.insert(roster, v)\n"
    "      end\n"
    "    end\n"
    "  until cursor == '0'\n"
    "end\n"
    "return {seq, epoch, entries, redis.call('GET', KEYS[5]) or '0', roster, total}\n";

/* A room's state for the application, read only: {seq, epoch, up to ARGV[2]
 * stream entries after ARGV[1], roster (HGETALL), the oldest entry}, or 0
 * when there is no such room. A room whose history expired (--history-ttl:
 * the epoch goes with it) while members stayed exists, with epoch "" and
 * seq 0, as the room list has it. */
const char BROKER_REDIS_STATE_LUA[] =
    "local epoch = redis.call('GET', KEYS[2])\n"
    "if not epoch then\n"
    "  if redis.call('HLEN', KEYS[4]) == 0 then return 0 end\n"
    "  epoch = ''\n"
    "end\n"
    "local entries = {}\n"
    "if tonumber(ARGV[2]) > 0 then\n"
    "  entries = redis.call('XRANGE', KEYS[3], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])\n"
    "end\n"
    "return {redis.call('GET', KEYS[1]) or '0', epoch, entries, redis.call('HGETALL', KEYS[4]),\n"
    "        redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)}\n";

/* A page of the cluster's rooms, read from the registry KEYS[1] (a zset,
 * every score 0, so in name order): the names from ARGV[1] to ARGV[2]
 * (ZRANGEBYLEX bounds), up to ARGV[3] rooms. A room exists while its
 * members hash (P:{R}:members, P being ARGV[5]) has entries or its seq key
 * lives (it had messages, not yet expired by --history-ttl); one that does
 * neither is removed from the registry and skipped, at most ARGV[4] per
 * call. Returns {{room, count, seq, epoch, ...}, next}: next is the last
 * room listed when another follows, the last name looked at when the
 * removals ran out, else "". Other rooms' keys are derived here, not passed:
 * one Redis, not Redis Cluster (the registry is one global key too). */
const char BROKER_REDIS_LIST_LUA[] =
    "local limit, gone = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local names = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, limit + gone + 1)\n"
    "local rooms, shown, looked = {}, 0, ''\n"
    "for _, name in ipairs(names) do\n"
    "  if gone == 0 then return {rooms, looked} end\n"
    "  local base = ARGV[5] .. ':{' .. name .. '}:'\n"
    "  local count = redis.call('HLEN', base .. 'members')\n"
    "  local seq = redis.call('GET', base .. 'seq')\n"
    "  if count == 0 and not seq then\n"
    "    redis.call('ZREM', KEYS[1], name)\n"
    "    gone = gone - 1\n"
    "  elseif shown == limit then\n"
    "    return {rooms, rooms[#rooms - 3]}\n"
    "  else\n"
    "    shown = shown + 1\n"
    "    for _, v in ipairs({name, count, seq or '0', redis.call('GET', base .. 'epoch') or ''}) do\n"
    "      table.insert(rooms, v)\n"
    "    end\n"
    "  end\n"
    "  looked = name\n"
    "end\n"
    "return {rooms, ''}\n";
