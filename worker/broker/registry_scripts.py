"""The Lua scripts the job registry runs, each one atomic check-and-set in Redis.

KEYS and ARGV are documented at each call in worker/broker/registry.py.
"""

RECORD = """
local exists = redis.call('EXISTS', KEYS[1])
local state = redis.call('HGET', KEYS[1], 'state')
if exists == 1 then
  local final = state == 'done' or state == 'failed' or state == 'cancelled'
  if ARGV[6] ~= '1' or not final then return {'exists', state} end
end
redis.call('HSET', KEYS[1], 'job', ARGV[1], 'state', ARGV[2], 'queue', ARGV[3],
  'attempts', 0, 'updated_at', ARGV[4], 'error', '', 'kind', '', 'result', '',
  'progress', '', 'cancel', '0', 'worker', '', 'attempt_id', '', 'backend', '',
  'queued_at', ARGV[4])
redis.call('HSETNX', KEYS[1], 'created_at', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[7])
if ARGV[2] ~= 'held' then redis.call('SADD', KEYS[3], ARGV[7]) end
if exists == 1 then return {'reset', state} end
return {'created', ARGV[2]}
"""

ACQUIRE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', ''} end
if state == 'done' or state == 'failed' or state == 'cancelled' then return {'final', state} end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return {'cancelled', ''} end
if state == 'held' then return {'on_hold', ''} end
local holder = redis.call('GET', KEYS[2])
if holder then return {'held', holder} end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[5]) then return {'exhausted', tostring(attempts)} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'staging', 'attempt_id', ARGV[1], 'worker', ARGV[2],
  'updated_at', ARGV[4], 'error', '', 'kind', '', 'progress', '', 'backend', '')
redis.call('SADD', KEYS[3], ARGV[6])
return {'ok', tostring(attempts)}
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

UPDATE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'progress', ARGV[3], 'backend', ARGV[4],
  'updated_at', ARGV[5])
return 1
"""

# KEYS: job, lease, active set, attempts hash, failure counters. ARGV: attempt id, state,
# time, error, kind, result, worker, job id, the attempt's ended record ('' for none), its
# failure label ('' for none).
FINISH = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HINCRBY', KEYS[5], ARGV[10], 1) end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated_at', ARGV[3], 'error', ARGV[4],
  'kind', ARGV[5], 'result', ARGV[6], 'worker', ARGV[7], 'attempt_id', '')
if ARGV[2] == 'done' or ARGV[2] == 'failed' or ARGV[2] == 'cancelled' then
  redis.call('SREM', KEYS[3], ARGV[8])
end
return 1
"""

CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'done' or state == 'failed' or state == 'cancelled' then return state end
if state == 'queued' or state == 'held' then
  if not redis.call('GET', KEYS[2]) then
    redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancel', '1', 'updated_at', ARGV[1])
    redis.call('SREM', KEYS[3], ARGV[2])
    return 'cancelled'
  end
end
redis.call('HSET', KEYS[1], 'cancel', '1', 'updated_at', ARGV[1])
return 'cancelling'
"""

# A job settled queued joins the active set (a held job, which is not in it, released by
# the finish hook of a live job), so the reconciler sees it if its message is lost.
SETTLE = """
if redis.call('GET', KEYS[2]) then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
if state == 'done' or state == 'failed' or state == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', ARGV[2], 'error', ARGV[3],
  'worker', '', 'attempt_id', '')
if ARGV[1] == 'failed' or ARGV[1] == 'cancelled' then redis.call('SREM', KEYS[3], ARGV[4]) end
if ARGV[1] == 'queued' then redis.call('SADD', KEYS[3], ARGV[4]) end
return 1
"""

# Claim an output for a job. KEYS: outputs hash (place -> job id), sources hash (place ->
# job id), job sources hash (job id -> its source as submitted). ARGV: job id, its source's
# place ('' for none), 'rename' | 'refuse', its source as submitted, then the candidate
# places in order of preference. A place the job already holds wins; else the first free
# place that is not a known recording is taken.
CLAIM = """
if ARGV[2] ~= '' then redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
for i = 5, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then return {'ok', ARGV[i], ''} end
end
for i = 5, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    local owner = redis.call('HGET', KEYS[1], ARGV[i])
    if not owner then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
      return {'ok', ARGV[i], ''}
    end
    if ARGV[3] == 'refuse' then return {'taken', ARGV[i], owner} end
  end
end
return {'full', '', ''}
"""
