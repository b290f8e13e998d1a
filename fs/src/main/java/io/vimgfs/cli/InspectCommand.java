package io.vimgfs.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vimgfs.store.ImageInfo;
import io.vimgfs.store.ImageStore;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vimgfs inspect NAME}: the image's status as JSON. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Print an image's status as JSON: digest, size, format, virtual size, names, created, backing.")
final class InspectCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "NAME", description = "A name, sha256:<hex>, or a unique digest prefix.")
    String reference;

    @Override
    public Integer call() throws Exception {
        try (ImageStore store = main.openStore()) {
            spec.commandLine().getOut().println(JSON.writeValueAsString(toJson(store.resolve(reference))));
            return 0;
        }
    }

    static ObjectNode toJson(ImageInfo image) {
        ObjectNode node = JSON.createObjectNode();
        node.put("digest", image.digest().toString());
        node.put("size", image.size());
        node.put("format", image.format().id());
        node.put("virtualSize", image.virtualSize());
        if (image.clusterSize() > 0) {
            node.put("clusterSize", image.clusterSize());
        }
        node.putArray("names").addAll(image.names().stream().map(n -> JSON.getNodeFactory().textNode(n.toString())).toList());
        node.put("created", image.created().toString());
        node.put("backing", image.backing().map(Object::toString).orElse(null));
        return node;
    }
}
