package io.newsflow.analysis;

import java.io.IOException;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.PositionIncrementAttribute;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.elasticsearch.plugin.analysis.TokenizerFactory;
import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.BooleanSetting;
import org.elasticsearch.plugin.settings.IntSetting;

/**
 * The two analysis-common components the security index ({@code .security-7}) is created with:
 * its {@code email} analyzer is {@code uax_url_email} + {@code pattern_capture} + {@code lowercase}
 * + {@code unique}. Without them a local stack started with security on cannot create that index,
 * so API keys (stored there) cannot be made at all ("Custom Analyzer [email] failed to find
 * tokenizer under name [uax_url_email]"). Same names and settings as analysis-common.
 */
public final class SecurityIndexAnalysis {
    private SecurityIndexAnalysis() {}

    /** Lucene's UAX#29 tokenizer that also keeps URLs and e-mail addresses as one token. */
    @NamedComponent("uax_url_email")
    public static final class UaxUrlEmail implements TokenizerFactory {

        /** analysis-common's setting of the same name. */
        @AnalysisSettings
        public interface Settings {
            @IntSetting(path = "max_token_length", defaultValue = 255)
            int maxTokenLength();
        }

        private final int maxTokenLength;

        @Inject
        public UaxUrlEmail(Settings settings) {
            this.maxTokenLength = settings.maxTokenLength();
        }

        @Override
        public Tokenizer create() {
            UAX29URLEmailTokenizer tokenizer = new UAX29URLEmailTokenizer();
            tokenizer.setMaxTokenLength(maxTokenLength);
            return tokenizer;
        }
    }

    /** Drops a token whose term was already emitted (anywhere, or at the same position only). */
    @NamedComponent("unique")
    public static final class Unique implements TokenFilterFactory {

        /** analysis-common's setting of the same name. */
        @AnalysisSettings
        public interface Settings {
            @BooleanSetting(path = "only_on_same_position", defaultValue = false)
            boolean onlyOnSamePosition();
        }

        private final boolean onlyOnSamePosition;

        @Inject
        public Unique(Settings settings) {
            this.onlyOnSamePosition = settings.onlyOnSamePosition();
        }

        @Override
        public TokenStream create(TokenStream tokenStream) {
            return new UniqueFilter(tokenStream, onlyOnSamePosition);
        }
    }

    /** Keeps the first occurrence of each term; with samePosition, within one position only. */
    static final class UniqueFilter extends TokenFilter {
        private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
        private final PositionIncrementAttribute position =
                addAttribute(PositionIncrementAttribute.class);
        private final CharArraySet seen = new CharArraySet(8, false);
        private final boolean samePosition;

        UniqueFilter(TokenStream input, boolean samePosition) {
            super(input);
            this.samePosition = samePosition;
        }

        @Override
        public boolean incrementToken() throws IOException {
            while (input.incrementToken()) {
                if (samePosition && position.getPositionIncrement() > 0) {
                    seen.clear();
                }
                char[] copy = new char[term.length()];
                System.arraycopy(term.buffer(), 0, copy, 0, term.length());
                if (seen.add(copy)) {
                    return true; // first time: keep it
                }
            }
            return false;
        }

        @Override
        public void reset() throws IOException {
            super.reset();
            seen.clear();
        }
    }
}
