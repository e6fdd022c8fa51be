package io.newsflow.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.BooleanSetting;

/**
 * The {@code asciifolding} token filter of analysis-common: folds "é" to "e", "ß" to "ss", ...
 * Used by name ({@code "filter": ["asciifolding"]}) or as a type with the same
 * {@code preserve_original} option ({@code {"type": "asciifolding", "preserve_original": true}}).
 *
 * <p>Analyzers only: Elasticsearch 9.3 refuses stable-API filters in custom normalizers
 * ("Custom normalizer [x] may not use filter [asciifolding]") and skips them when normalising
 * wildcard/prefix query terms, because its wrapper does not implement the internal
 * NormalizingTokenFilterFactory. {@link #normalize} is there for when it does.
 */
@NamedComponent("asciifolding")
public final class AsciiFoldingTokenFilterFactory implements TokenFilterFactory {

    /** Settings of a filter definition, read by Elasticsearch through this annotated interface. */
    @AnalysisSettings
    public interface Settings {
        @BooleanSetting(path = "preserve_original", defaultValue = false)
        boolean preserveOriginal();
    }

    private final boolean preserveOriginal;

    @Inject
    public AsciiFoldingTokenFilterFactory(Settings settings) {
        this.preserveOriginal = settings.preserveOriginal();
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return new ASCIIFoldingFilter(tokenStream, preserveOriginal);
    }

    @Override
    public TokenStream normalize(TokenStream tokenStream) {
        // Normalising yields one term: fold without keeping the original (as the built-in does).
        return new ASCIIFoldingFilter(tokenStream, false);
    }
}
