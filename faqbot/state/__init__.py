"""State that lives in process memory, or in Redis when REDIS_URL is set (shared by replicas).

redis          a Redis connection that degrades to per-process state, not errors, when Redis fails
cache          answer cache: TTL + LRU in process, plus Redis
conversations  the HTTP API's conversation histories and their ownership tokens
ratelimit      per-client rate limiting (moving window), in memory or Redis
"""
