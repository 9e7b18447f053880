package dev.relay.auth;

import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Locale;

/**
 * Password schemes of the users file, written {@code {SCHEME}data} as in Dovecot's passwd-file:
 * <ul>
 *   <li>{@code {PBKDF2-SHA256}$ROUNDS$SALT$HASH}: PBKDF2-HMAC-SHA256 (NIST SP 800-132), SALT 16 random bytes and
 *   HASH 32 bytes, both base64; what {@code ops/relay passwd} writes, with {@link #DEFAULT_ROUNDS} rounds (OWASP's
 *   figure for this PRF), so a stolen file costs an attacker that much per guess;</li>
 *   <li>{@code {PBKDF2}$1$SALT$ROUNDS$HEXHASH}: Dovecot's own PBKDF2 (HMAC-SHA1, 20-byte hash, the salt as
 *   written), so a Dovecot file works as it is;</li>
 *   <li>{@code {PLAIN}password}: the password itself (accepted with a warning when the file is read).</li>
 * </ul>
 * Comparisons are constant-time. Stateless and thread safe; verifying a PBKDF2 hash is slow on purpose, so it never
 * runs on a selector loop.
 */
public final class PasswordHashes
{
    public static final String PBKDF2_SHA256 = "PBKDF2-SHA256";
    public static final String DOVECOT_PBKDF2 = "PBKDF2";
    public static final String PLAIN = "PLAIN";
    /** Rounds of new hashes: OWASP's 2023 figure for PBKDF2-HMAC-SHA256. */
    public static final int DEFAULT_ROUNDS = 600_000;
    private static final int SALT_BYTES = 16;
    private static final int HASH_BYTES = 32;
    private static final SecureRandom RANDOM = new SecureRandom();

    private PasswordHashes()
    {
    }

    /**
     * @return the scheme of {@code stored} ({@code PBKDF2-SHA256}, {@code PBKDF2}, {@code PLAIN}).
     * @throws IllegalArgumentException when it names no scheme or one not supported, or its data is malformed.
     */
    public static String checkFormat(final String stored)
    {
        final String scheme = scheme(stored);
        final String data = stored.substring(scheme.length() + 2);
        switch (scheme)
        {
            case PLAIN:
                break;
            case PBKDF2_SHA256:
                parseSha256(data);
                break;
            case DOVECOT_PBKDF2:
                parseDovecot(data);
                break;
            default:
                throw new IllegalArgumentException("unsupported password scheme {" + scheme + "} (supported: {" +
                    PBKDF2_SHA256 + "}, {" + DOVECOT_PBKDF2 + "}, {" + PLAIN + "})");
        }
        return scheme;
    }

    private static String scheme(final String stored)
    {
        if (!stored.startsWith("{") || stored.indexOf('}') < 2)
        {
            throw new IllegalArgumentException("the password has no {SCHEME} prefix");
        }
        return stored.substring(1, stored.indexOf('}')).toUpperCase(Locale.ROOT);
    }

    /** Whether {@code password} (UTF-8) matches {@code stored}; a malformed entry matches nothing. Slow for PBKDF2. */
    public static boolean verify(final byte[] password, final String stored)
    {
        try
        {
            final String scheme = scheme(stored);
            final String data = stored.substring(scheme.length() + 2);
            switch (scheme)
            {
                case PLAIN:
                    return MessageDigest.isEqual(password, data.getBytes(StandardCharsets.UTF_8));
                case PBKDF2_SHA256:
                {
                    final Sha256 parsed = parseSha256(data);
                    return MessageDigest.isEqual(parsed.hash(),
                        pbkdf2("PBKDF2WithHmacSHA256", password, parsed.salt(), parsed.rounds(), HASH_BYTES));
                }
                case DOVECOT_PBKDF2:
                {
                    final Dovecot parsed = parseDovecot(data);
                    return MessageDigest.isEqual(parsed.hash(), pbkdf2("PBKDF2WithHmacSHA1", password,
                        parsed.salt(), parsed.rounds(), parsed.hash().length));
                }
                default:
                    return false;
            }
        }
        catch (final IllegalArgumentException ex)
        {
            return false;
        }
    }

    /** A new {@code {PBKDF2-SHA256}} entry for {@code password} with a random salt. */
    public static String hash(final byte[] password, final int rounds)
    {
        final byte[] salt = new byte[SALT_BYTES];
        RANDOM.nextBytes(salt);
        final byte[] hash = pbkdf2("PBKDF2WithHmacSHA256", password, salt, rounds, HASH_BYTES);
        final Base64.Encoder base64 = Base64.getEncoder().withoutPadding();
        return "{" + PBKDF2_SHA256 + "}$" + rounds + "$" + base64.encodeToString(salt) + "$" +
            base64.encodeToString(hash);
    }

    private record Sha256(int rounds, byte[] salt, byte[] hash)
    {
    }

    private record Dovecot(int rounds, byte[] salt, byte[] hash)
    {
    }

    private static Sha256 parseSha256(final String data)
    {
        final String[] parts = data.split("\\$", -1);
        if (parts.length != 4 || !parts[0].isEmpty())
        {
            throw new IllegalArgumentException("{" + PBKDF2_SHA256 + "} wants $ROUNDS$SALT$HASH");
        }
        final Base64.Decoder base64 = Base64.getDecoder();
        final byte[] salt;
        final byte[] hash;
        try
        {
            salt = base64.decode(parts[2]);
            hash = base64.decode(parts[3]);
        }
        catch (final IllegalArgumentException ex)
        {
            throw new IllegalArgumentException("{" + PBKDF2_SHA256 + "}: salt or hash is not base64");
        }
        if (hash.length < 16 || salt.length < 8)
        {
            throw new IllegalArgumentException("{" + PBKDF2_SHA256 + "}: salt or hash too short");
        }
        return new Sha256(rounds(parts[1]), salt, hash);
    }

    private static Dovecot parseDovecot(final String data)
    {
        // Dovecot: $1$<salt>$<rounds>$<hex of PBKDF2-HMAC-SHA1, 20 bytes>
        final String[] parts = data.split("\\$", -1);
        if (parts.length != 5 || !parts[0].isEmpty() || !"1".equals(parts[1]))
        {
            throw new IllegalArgumentException("{" + DOVECOT_PBKDF2 + "} wants $1$SALT$ROUNDS$HEXHASH");
        }
        final byte[] hash;
        try
        {
            hash = HexFormat.of().parseHex(parts[4].toLowerCase(Locale.ROOT));
        }
        catch (final IllegalArgumentException ex)
        {
            throw new IllegalArgumentException("{" + DOVECOT_PBKDF2 + "}: the hash is not hex");
        }
        return new Dovecot(rounds(parts[3]), parts[2].getBytes(StandardCharsets.UTF_8), hash);
    }

    private static int rounds(final String text)
    {
        try
        {
            final int rounds = Integer.parseInt(text);
            if (rounds >= 1)
            {
                return rounds;
            }
        }
        catch (final NumberFormatException ex)
        {
            // below
        }
        throw new IllegalArgumentException("rounds \"" + text + "\" is not a positive integer");
    }

    private static byte[] pbkdf2(
        final String algorithm, final byte[] password, final byte[] salt, final int rounds, final int bytes)
    {
        final char[] chars = utf8Chars(password);
        final PBEKeySpec spec = new PBEKeySpec(chars, salt, rounds, bytes * 8);
        try
        {
            return SecretKeyFactory.getInstance(algorithm).generateSecret(spec).getEncoded();
        }
        catch (final GeneralSecurityException ex)
        {
            throw new IllegalStateException(algorithm + " is missing from this JDK", ex);
        }
        finally
        {
            spec.clearPassword();
            Arrays.fill(chars, '\0');
        }
    }

    /**
     * The JDK's PBKDF2 takes chars (and encodes them as UTF-8 itself); a password that is not valid UTF-8 is read as
     * ISO-8859-1, the same way when hashing and when checking, so such a password still works.
     */
    private static char[] utf8Chars(final byte[] password)
    {
        try
        {
            final CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(password));
            final char[] result = new char[chars.remaining()];
            chars.get(result);
            return result;
        }
        catch (final CharacterCodingException ex)
        {
            final char[] result = new char[password.length];
            for (int i = 0; i < password.length; i++)
            {
                result[i] = (char)(password[i] & 0xFF);
            }
            return result;
        }
    }
}
