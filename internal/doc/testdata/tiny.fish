# fish completion for tiny; generated from tiny's command-line model; do not edit.

# __tiny_subs PATH: the subcommands of a command.
function __tiny_subs
    switch "$argv[1]"
        case ''
            printf '%s\n' 'up' 'down' 'run' 'unit'
        case 'unit'
            printf '%s\n' 'install' 'show'
    end
end

# __tiny_vflags PATH: the flags of a command that take a value.
function __tiny_vflags
    switch "$argv[1]"
        case 'up'
            printf '%s\n' '--log'
        case 'down'
            printf '%s\n' '--grace'
        case 'run'
            printf '%s\n' '--user' '-u'
        case 'unit install'
            printf '%s\n' '--style' '--dir'
    end
end

# __tiny_rest PATH: the argument that takes every remaining word (none: -1).
function __tiny_rest
    switch "$argv[1]"
        case 'run'
            echo 1
        case '*'
            echo -1
    end
end

# __tiny_cmdarg PATH: the argument that is a command line of its own (none: -1).
function __tiny_cmdarg
    switch "$argv[1]"
        case 'run'
            echo 1
        case '*'
            echo -1
    end
end

# __tiny_walk: "p" and the command path, the positional argument at the cursor, and the
# index of the word where a command line of its own starts (-1: none).
function __tiny_walk
    set -l tokens (commandline -opc)
    set -l n (count $tokens)
    set -l path
    set -l npos 0
    set -l dashdash 0
    set -l i 2
    while test $i -le $n
        set -l w $tokens[$i]
        if test $dashdash = 0 -a "x$w" = x--
            set dashdash 1
        else if test $dashdash = 0; and string match -q -- '-?*' $w
            if not string match -q -- '*=*' $w; and contains -- $w (__tiny_vflags "$path")
                set i (math $i + 1)
            end
        else if test $npos = 0 -a $dashdash = 0; and contains -- $w (__tiny_subs "$path")
            set path $path $w
        else if test $npos = (__tiny_cmdarg "$path")
            echo "p$path"; echo $npos; echo $i
            return
        else
            set npos (math $npos + 1)
        end
        set i (math $i + 1)
    end
    set -l start -1
    if test $npos = (__tiny_cmdarg "$path")
        set start (math $n + 1)
    end
    set -l rest (__tiny_rest "$path")
    if test $rest -ge 0 -a $npos -gt $rest
        set npos $rest
    end
    echo "p$path"; echo $npos; echo $start
end

# __tiny_at PATH WHAT: whether the cursor is in command PATH at WHAT: flags, sub (its
# subcommand), cmd (a command line of its own), or N (positional argument N).
function __tiny_at
    set -l st (__tiny_walk)
    test "$st[1]" = "p$argv[1]"; or return 1
    switch $argv[2]
        case flags
            test $st[3] = -1
        case sub
            test $st[3] = -1 -a $st[2] = 0
        case cmd
            test $st[3] != -1
        case '*'
            test $st[3] = -1 -a $st[2] = $argv[2]
    end
end

# __tiny_dynamic KIND: names tiny lists itself (tiny __complete KIND).
function __tiny_dynamic
    set -l prog (commandline -opc)[1]
    $prog __complete $argv[1] 2>/dev/null
end

# __tiny_files GLOB: the files that match GLOB, and directories to descend into.
function __tiny_files
    for f in (__fish_complete_path (commandline -ct))
        set f (string split -f1 \t -- $f)
        if string match -q -- '*/' $f; or string match -q -- $argv[1] (path basename -- $f)
            echo $f
        end
    end
end

# __tiny_cmdline: complete the command line that starts inside this one.
function __tiny_cmdline
    set -l st (__tiny_walk)
    set -l tokens (commandline -opc)
    set -l rest
    if test $st[3] -le (count $tokens)
        set rest $tokens[$st[3]..-1]
    end
    __fish_complete_subcommand --commandline $rest (commandline -ct)
end

complete -c tiny -f

# tiny
complete -c tiny -n '__tiny_at "" sub' -a 'up' -d 'Bring a tunnel up from CONFIG (or NAME\'s config).'
complete -c tiny -n '__tiny_at "" sub' -a 'down' -d 'Take NAME down.'
complete -c tiny -n '__tiny_at "" sub' -a 'run' -d 'Run a command inside NAME.'
complete -c tiny -n '__tiny_at "" sub' -a 'unit' -d 'systemd drop-ins.'
complete -c tiny -n '__tiny_at "" flags' -s h -l help -d 'Show context-sensitive help.'
complete -c tiny -n '__tiny_at "" flags' -s v -l verbose -d 'Say more.'

# tiny up
complete -c tiny -n '__tiny_at "up" flags' -s h -l help -d 'Show context-sensitive help.'
complete -c tiny -n '__tiny_at "up" flags' -s v -l verbose -d 'Say more.'
complete -c tiny -n '__tiny_at "up" flags' -l dry-run -d 'Change nothing; print the plan.'
complete -c tiny -n '__tiny_at "up" flags' -l log -r -F -d 'Write a log to FILE.'
complete -c tiny -n '__tiny_at "up" 0' -a '(__tiny_dynamic configs) (__tiny_files \'*.conf\')'

# tiny down
complete -c tiny -n '__tiny_at "down" flags' -s h -l help -d 'Show context-sensitive help.'
complete -c tiny -n '__tiny_at "down" flags' -s v -l verbose -d 'Say more.'
complete -c tiny -n '__tiny_at "down" flags' -l grace -x -d 'How long to wait after SIGTERM.'
complete -c tiny -n '__tiny_at "down" flags' -l color -d 'Use colours.'
complete -c tiny -n '__tiny_at "down" flags' -l no-color -d 'Use colours.'
complete -c tiny -n '__tiny_at "down" 0' -a '(__tiny_dynamic tunnels)'

# tiny run
complete -c tiny -n '__tiny_at "run" flags' -s h -l help -d 'Show context-sensitive help.'
complete -c tiny -n '__tiny_at "run" flags' -s v -l verbose -d 'Say more.'
complete -c tiny -n '__tiny_at "run" flags' -s u -l user -x -a '(__fish_complete_users)' -d 'Run as USER (name or uid).'
complete -c tiny -n '__tiny_at "run" 0' -a '(__tiny_dynamic tunnels)'
complete -c tiny -n '__tiny_at "run" cmd' -a '(__tiny_cmdline)'

# tiny unit
complete -c tiny -n '__tiny_at "unit" sub' -a 'install' -d 'Write a drop-in: UNIT runs inside NAME.'
complete -c tiny -n '__tiny_at "unit" sub' -a 'show' -d 'Print the drop-in.'
complete -c tiny -n '__tiny_at "unit" flags' -s h -l help -d 'Show context-sensitive help.'
complete -c tiny -n '__tiny_at "unit" flags' -s v -l verbose -d 'Say more.'

# tiny unit install
complete -c tiny -n '__tiny_at "unit install" flags' -s h -l help -d 'Show context-sensitive help.'
complete -c tiny -n '__tiny_at "unit install" flags' -s v -l verbose -d 'Say more.'
complete -c tiny -n '__tiny_at "unit install" flags' -l style -x -a 'path joins' -d 'How UNIT enters NAME: \'path\' [NetworkNamespacePath=] or "joins"; a back\\slash: too.'
complete -c tiny -n '__tiny_at "unit install" flags' -l dir -x -a '(__fish_complete_directories)' -d '.d directories go under DIR.'
complete -c tiny -n '__tiny_at "unit install" 0' -a '(__tiny_dynamic tunnels)'

# tiny unit show
complete -c tiny -n '__tiny_at "unit show" flags' -s h -l help -d 'Show context-sensitive help.'
complete -c tiny -n '__tiny_at "unit show" flags' -s v -l verbose -d 'Say more.'
complete -c tiny -n '__tiny_at "unit show" 0' -a '(__tiny_dynamic tunnels)'
