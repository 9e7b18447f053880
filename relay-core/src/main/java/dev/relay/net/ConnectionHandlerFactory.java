package dev.relay.net;

/** Creates the handler of each accepted connection; called on the accepting loop's thread. */
@FunctionalInterface
public interface ConnectionHandlerFactory
{
    ConnectionHandler newHandler(Connection connection);
}
