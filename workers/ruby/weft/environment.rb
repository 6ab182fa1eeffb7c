# frozen_string_literal: true

module Weft
  # The Gemfile the worker was told to use cannot be set up.
  class GemfileError < StandardError; end

  # Where the handlers' own gems come from (docs/handlers-python-ruby.md,
  # "Your packages"). Called by Bridge.load_handlers before any handler file
  # is required.
  module Environment
    SETTINGS = 'WEFT_BUNDLE_GEMFILE or BUNDLE_GEMFILE'

    module_function

    # Sets the bundle of +gemfile+ up as `require 'bundler/setup'` would:
    # its gems (path and git gems included) go on $LOAD_PATH and only they
    # can be activated. Bundler.setup itself, not bundler/setup: on a
    # terminal that file prints and calls `exit` when a gem is missing.
    def use_gemfile(gemfile)
      gemfile = File.expand_path(gemfile)
      unless File.file?(gemfile)
        raise GemfileError, "the Gemfile #{gemfile} (#{SETTINGS}) does not exist; write one, or unset the setting"
      end

      ENV['BUNDLE_GEMFILE'] = gemfile # Bundler reads it from here (and children the handlers start inherit it)
      begin
        require 'bundler'
      rescue LoadError => e
        raise GemfileError, "Bundler is not installed for Ruby #{RUBY_VERSION} (#{e.message}); install it with `gem install bundler`"
      end
      begin
        Bundler.ui.silence { Bundler.setup }
      rescue Bundler::BundlerError => e
        raise GemfileError, "Bundler could not set up the Gemfile #{gemfile} (#{SETTINGS}): #{e.class.name.split('::').last}: " \
                            "#{e.message.strip}; run `BUNDLE_GEMFILE=#{gemfile} bundle install` as the user the worker runs as"
      end
      gemfile
    end

    # The text added to a LoadError raised while loading handlers: where Ruby
    # looked, and how to make the library loadable.
    def missing_library_hint(error, gemfile)
      name = error.path || error.message[/-- (\S+)\z/, 1] || 'the library'
      how = if gemfile
              "with Bundler only the gems of #{gemfile} can be loaded: add the gem that provides #{name.inspect} to it and run `bundle install`"
            else
              "install the gem that provides #{name.inspect} (`gem install`), or list it in a Gemfile and set #{SETTINGS} to it"
            end
      "; Ruby #{RUBY_VERSION} searched $LOAD_PATH: #{$LOAD_PATH.inspect}; #{how}"
    end
  end
end
