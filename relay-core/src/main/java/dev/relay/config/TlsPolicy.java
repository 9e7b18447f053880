package dev.relay.config;

/**
 * One entry of {@code delivery.tls.policy}: mail for {@code domain} is delivered at {@code level}. {@code domain}
 * is lowercase and matches as in {@link Route}: an exact domain, a {@code .suffix} for every subdomain, or
 * {@code *}.
 */
public record TlsPolicy(String domain, TlsLevel level)
{
}
