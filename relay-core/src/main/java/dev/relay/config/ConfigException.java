package dev.relay.config;

import java.util.List;

/**
 * Every problem found while loading the configuration, one line each, in the form
 * {@code source:line: key: "value" reason} (for example
 * {@code relay.properties:12: smtp.max_recipients: "abc" is not a positive integer}).
 * <p>
 * Thrown once, after the whole file and the system properties have been checked, so an operator sees all the
 * problems at once. The process is expected to print {@link #getMessage()} and exit with {@link #EXIT_CODE}.
 * Immutable; created on the start-up thread only.
 */
public final class ConfigException extends Exception
{
    /**
     * Exit status for a configuration that cannot be used.
     */
    public static final int EXIT_CODE = 2;

    private static final long serialVersionUID = 1L;

    private final List<String> problems;

    /**
     * @param problems one message per problem, at least one.
     */
    public ConfigException(final List<String> problems)
    {
        super(String.join("\n", problems));
        if (problems.isEmpty())
        {
            throw new IllegalArgumentException("a ConfigException needs at least one problem");
        }
        this.problems = List.copyOf(problems);
    }

    /**
     * @return the problems in the order they were found (file order, then system properties), never empty.
     */
    public List<String> problems()
    {
        return problems;
    }
}
