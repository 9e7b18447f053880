package dev.relay;

public final class RelayMain
{
    public static void main(final String[] args)
    {
    }
}
