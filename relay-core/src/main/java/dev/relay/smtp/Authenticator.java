package dev.relay.smtp;

/**
 * Checks AUTH credentials (RFC 4954) for the SMTP sessions of one loop. Password hashes are slow on purpose, so the
 * check runs off the loop; the answer comes back on the session's loop thread, through {@link Listener}. Implemented
 * by the root package's wiring ({@code dev.relay.auth}); tests give their own.
 */
public interface Authenticator
{
    /** The user and password match. */
    int OK = 0;
    /** Unknown user or wrong password (535 5.7.8). */
    int FAILED = 1;
    /** The check could not be made now: overloaded, or the users file unreadable (454 4.7.0). */
    int TEMPORARY = 2;

    /** The answer to one {@link #verify} call, on the session's loop thread. */
    @FunctionalInterface
    interface Listener
    {
        void onAuthResult(int result);
    }

    /**
     * Starts checking {@code password} (UTF-8 bytes; the implementation may clear them once checked) for
     * {@code user}; {@code listener} is called exactly once, later, on the calling loop's thread. Called on a loop
     * thread: must not block.
     */
    void verify(String user, byte[] password, Listener listener);
}
