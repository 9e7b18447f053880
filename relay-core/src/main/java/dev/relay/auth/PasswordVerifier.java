package dev.relay.auth;

import dev.relay.smtp.Authenticator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Checks AUTH passwords against the {@link UsersFile} on threads of its own ({@code auth-N}): a PBKDF2 check takes
 * a good fraction of a second of CPU on purpose, which no selector loop may spend. The answer goes back to the
 * session's loop through that loop's executor ({@link #forLoop}). At most {@link #MAX_PENDING} checks wait at once;
 * beyond that AUTH gets a temporary failure instead of a growing queue. An unknown user costs the same as a wrong
 * password (a dummy hash is checked), so timing does not tell which users exist. The same threads look at the users
 * file for changes.
 * <p>
 * A client that logs in again with the same password is not charged the slow check again for an hour (Dovecot's
 * {@code auth_cache_ttl}): a successful check leaves a keyed SHA-256 of the stored entry and the password (the key
 * random per process, so the cache holds nothing a stolen heap dump could reuse elsewhere), checked on the loop in
 * about a microsecond. A changed entry (the file reloaded) or a wrong password misses the cache and is checked the
 * slow way; failures are never cached.
 */
public final class PasswordVerifier implements AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(PasswordVerifier.class);
    static final int MAX_PENDING = 256;
    private static final long CACHE_TTL_MS = 3_600_000;
    private static final int MAX_CACHED = 10_000;

    private final UsersFile users;
    private final ScheduledThreadPoolExecutor threads;
    private final AtomicInteger pending = new AtomicInteger();
    private final String dummy;
    private final byte[] cacheKey = new byte[32];
    private final ConcurrentHashMap<String, Cached> cache = new ConcurrentHashMap<>();

    private record Cached(byte[] digest, long expiresAtMs)
    {
    }

    public PasswordVerifier(final UsersFile users, final int threadCount, final Duration reloadInterval)
    {
        this.users = users;
        final AtomicInteger names = new AtomicInteger();
        this.threads = new ScheduledThreadPoolExecutor(threadCount, task ->
        {
            final Thread thread = new Thread(task, "auth-" + names.getAndIncrement());
            thread.setDaemon(true);
            return thread;
        });
        new SecureRandom().nextBytes(cacheKey);
        this.dummy = PasswordHashes.hash("not a password".getBytes(StandardCharsets.UTF_8),
            PasswordHashes.DEFAULT_ROUNDS);
        if (!reloadInterval.isZero())
        {
            final long ms = reloadInterval.toMillis();
            threads.scheduleWithFixedDelay(users::reloadIfChanged, ms, ms, TimeUnit.MILLISECONDS);
        }
    }

    /** The sessions' {@link Authenticator} for one loop: answers run on {@code loop} (its execute). */
    public Authenticator forLoop(final Executor loop)
    {
        return (user, password, listener) ->
        {
            if (cachedOk(user, password))
            {
                Arrays.fill(password, (byte)0);
                loop.execute(() -> listener.onAuthResult(Authenticator.OK));
                return;
            }
            if (pending.incrementAndGet() > MAX_PENDING)
            {
                pending.decrementAndGet();
                Arrays.fill(password, (byte)0);
                loop.execute(() -> listener.onAuthResult(Authenticator.TEMPORARY));
                return;
            }
            threads.execute(() ->
            {
                int result = Authenticator.TEMPORARY;
                try
                {
                    result = check(user, password);
                }
                catch (final RuntimeException ex)
                {
                    LOG.error("AUTH check failed for {}", user, ex);
                }
                finally
                {
                    pending.decrementAndGet();
                    Arrays.fill(password, (byte)0);
                }
                final int answer = result;
                loop.execute(() -> listener.onAuthResult(answer));
            });
        };
    }

    int check(final String user, final byte[] password)
    {
        final String stored = users.stored(user);
        if (stored == null)
        {
            PasswordHashes.verify(password, dummy);
            return Authenticator.FAILED;
        }
        if (!PasswordHashes.verify(password, stored))
        {
            return Authenticator.FAILED;
        }
        if (cache.size() >= MAX_CACHED)
        {
            cache.clear();
        }
        cache.put(user, new Cached(digest(stored, password), System.currentTimeMillis() + CACHE_TTL_MS));
        return Authenticator.OK;
    }

    /** The same user, entry and password succeeded within the hour. */
    boolean cachedOk(final String user, final byte[] password)
    {
        final Cached cached = cache.get(user);
        if (cached == null || System.currentTimeMillis() >= cached.expiresAtMs())
        {
            return false;
        }
        final String stored = users.stored(user);
        return stored != null && MessageDigest.isEqual(cached.digest(), digest(stored, password));
    }

    private byte[] digest(final String stored, final byte[] password)
    {
        try
        {
            final Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(cacheKey, "HmacSHA256"));
            mac.update(stored.getBytes(StandardCharsets.UTF_8));
            mac.update((byte)0);
            return mac.doFinal(password);
        }
        catch (final GeneralSecurityException ex)
        {
            throw new IllegalStateException("HmacSHA256 is missing from this JDK", ex);
        }
    }

    @Override
    public void close()
    {
        threads.shutdownNow();
    }
}
