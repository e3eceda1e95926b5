// A Neo4j 3.x community server (Bolt and HTTP) for the graph store's tests against the oldest Neo4j it
// supports. Run as a single-file source program (nothing to compile ahead):
//
//   java <--add-opens flags> Neo4jLegacyLauncher.java <jars dir> --home-dir=<home> --config-dir=<conf dir>
//
// It runs Neo4j's own org.neo4j.server.CommunityEntryPoint (the `neo4j console` main) with the jars of
// <jars dir> in a class loader of its own that hides one class: Neo4j 3.3's Bolt 1 string encoder
// (SunMiscUTF8Encoder) reads java.lang.String's char[], which Java 9 and later no longer have, and fails
// every Bolt connection with an AssertionError, while Neo4j falls back to its plain encoder only when that
// class is missing. Hidden, Bolt 1 works on Java 17 and 25 as on Java 8. Blocks until killed (SIGTERM shuts
// the server down cleanly through Neo4j's own shutdown hook).

import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

public class Neo4jLegacyLauncher {
    static final String HIDDEN = "org.neo4j.bolt.v1.packstream.utf8.SunMiscUTF8Encoder";

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: java Neo4jLegacyLauncher.java <jars dir> --home-dir=... --config-dir=...");
            System.exit(2);
        }
        List<URL> urls = new ArrayList<>();
        try (Stream<Path> files = Files.list(Path.of(args[0]))) {
            for (Path p : (Iterable<Path>) files.filter(f -> f.toString().endsWith(".jar")).sorted()::iterator) {
                urls.add(p.toUri().toURL());
            }
        }
        ClassLoader loader = new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader()) {
            @Override
            protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
                if (name.equals(HIDDEN)) {
                    throw new ClassNotFoundException(name);
                }
                return super.loadClass(name, resolve);
            }
        };
        Thread.currentThread().setContextClassLoader(loader);
        Class<?> entry = Class.forName("org.neo4j.server.CommunityEntryPoint", true, loader);
        Method main = entry.getMethod("main", String[].class);
        main.invoke(null, (Object) Arrays.copyOfRange(args, 1, args.length));
    }
}
