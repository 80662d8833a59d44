/* broker_redis_lua: the Redis broker's Lua scripts (private to broker_redis).
 * PUBLISH numbers, keeps and publishes a message; SYNC returns a room's
 * state, newest history and roster; PRESENCE applies one roster change;
 * NODE writes a heartbeat and expires silent nodes; STATE reads a room
 * and LIST a page of the room registry for the HTTP API. */
#ifndef WSHUB_BROKER_REDIS_LUA_H
#define WSHUB_BROKER_REDIS_LUA_H

extern const char BROKER_REDIS_PUBLISH_LUA[];
extern const char BROKER_REDIS_SYNC_LUA[];
extern const char BROKER_REDIS_PRESENCE_LUA[];
extern const char BROKER_REDIS_NODE_LUA[];
extern const char BROKER_REDIS_STATE_LUA[];
extern const char BROKER_REDIS_LIST_LUA[];

#endif
