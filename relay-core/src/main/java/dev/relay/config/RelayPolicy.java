package dev.relay.config;

import java.util.Set;

/**
 * Who may relay (DESIGN.md "open relay"): clients in {@code relay.networks} to any domain, anyone to the domains of
 * {@code relay.domains}. Read by the root package for the SMTP conversation and for the limits' exemption, at
 * start and at each reload; immutable, any thread. {@link #isRelayDomain} may create suffix strings.
 *
 * @param networks {@code relay.networks}: clients allowed to relay anywhere.
 * @param domains  {@code relay.domains}, lowercase, unmodifiable; an entry starting with a dot stands for
 *                 subdomains.
 */
public record RelayPolicy(NetworkList networks, Set<String> domains)
{
    static RelayPolicy from(final ConfigValues values)
    {
        return new RelayPolicy(values.get(ConfigKey.RELAY_NETWORKS), values.get(ConfigKey.RELAY_DOMAINS));
    }

    /**
     * @param domainLowercase a recipient domain, lowercase, without trailing dot.
     * @return true when {@code relay.domains} lists it exactly, or lists {@code .suffix} and the domain is a
     * subdomain of {@code suffix} (not {@code suffix} itself).
     */
    public boolean isRelayDomain(final String domainLowercase)
    {
        if (domains.isEmpty())
        {
            return false;
        }
        if (domains.contains(domainLowercase))
        {
            return true;
        }
        for (int dot = domainLowercase.indexOf('.'); dot >= 0; dot = domainLowercase.indexOf('.', dot + 1))
        {
            if (domains.contains(domainLowercase.substring(dot)))
            {
                return true;
            }
        }

        return false;
    }
}
